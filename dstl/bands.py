"""Band order, names, wavelengths and bit depths of a DSTL scene.

A full scene is 20 bands on the 3-band (RGB, ~0.31 m/px) grid of its image, in this order:

    index  name         product                          centre wavelength (nm)
    0-2    R, G, B      three_band/<id>.tif (pansharpened)  660, 545, 480
    3      P            sixteen_band/<id>_P.tif            625 (450-800 broadband)
    4-11   M1..M8       sixteen_band/<id>_M.tif            coastal 425, blue 480, green 545,
                                                            yellow 605, red 660, red-edge 725,
                                                            NIR1 832, NIR2 950
    12-19  A1..A8       sixteen_band/<id>_A.tif            SWIR 1210, 1570, 1660, 1730,
                                                            2165, 2205, 2260, 2330

Values are scaled to [0, 1] by each product's bit depth: 3-band, P and M are 11-bit (0..2047),
A is 14-bit (0..16383). An RGB-only scene (a plain image) has just bands R, G, B, scaled to [0, 1]
by its own bit depth (8 or 16 bit).
"""

RGB_BANDS: tuple[str, ...] = ("R", "G", "B")
P_BANDS: tuple[str, ...] = ("P",)
M_BANDS: tuple[str, ...] = tuple(f"M{i}" for i in range(1, 9))
A_BANDS: tuple[str, ...] = tuple(f"A{i}" for i in range(1, 9))

#: The 20 bands of a full DSTL scene, in array order.
ALL_BANDS: tuple[str, ...] = RGB_BANDS + P_BANDS + M_BANDS + A_BANDS

#: Centre wavelength of each band in nanometres (WorldView-3 band centres).
WAVELENGTH_NM: dict[str, float] = {
    "R": 660.0, "G": 545.0, "B": 480.0,
    "P": 625.0,
    "M1": 425.0, "M2": 480.0, "M3": 545.0, "M4": 605.0,
    "M5": 660.0, "M6": 725.0, "M7": 832.0, "M8": 950.0,
    "A1": 1210.0, "A2": 1570.0, "A3": 1660.0, "A4": 1730.0,
    "A5": 2165.0, "A6": 2205.0, "A7": 2260.0, "A8": 2330.0,
}

#: Human-readable description of each band.
BAND_DESCRIPTION: dict[str, str] = {
    "R": "red (3-band, pansharpened)", "G": "green (3-band, pansharpened)",
    "B": "blue (3-band, pansharpened)", "P": "panchromatic",
    "M1": "coastal", "M2": "blue", "M3": "green", "M4": "yellow", "M5": "red",
    "M6": "red edge", "M7": "near infrared 1", "M8": "near infrared 2",
    **{f"A{i}": f"short-wave infrared {i}" for i in range(1, 9)},
}

#: Largest raw value of each product (the scale that maps it to [0, 1]).
BIT_DEPTH_MAX: dict[str, int] = {"3": 2047, "P": 2047, "M": 2047, "A": 16383}
