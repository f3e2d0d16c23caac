#!/usr/bin/python3
"""tests/raw/make_dng.py: build DNG files from a real camera photo, for the
RAW tests (tests/test_raw.c). Nothing made here is ever committed: the test
runs this into a temporary folder.

    make_dng.py SOURCE.jpg OUTDIR

SOURCE is decoded with the `vips` command (libvips-tools; numpy cannot
decode JPEG) to its stored pixels (no autorotation), taken from sRGB to
linear light, and mosaicked to an RGGB Bayer colour filter array of 14-bit
samples (BlackLevel 512, WhiteLevel 16383). The camera's colour space is
linear sRGB, so ColorMatrix1 is the XYZ (D65) -> linear sRGB matrix with
CalibrationIlluminant1 D65 and AsShotNeutral 1,1,1: a correct demosaic
gives the source photo back.

The DNG is written here by hand (the layout is small, and tifffile cannot
write the Exif and GPS IFDs a camera writes); tifffile then reads every file
back and checks its tags. IFD0 comes right after the header, as cameras and
Adobe's converter write it, so the type is known from the first bytes.

Files written, all 1:1 with SOURCE's stored size (cropped to even):
    preview.dng          IFD0: a full-size baseline JPEG preview (NewSubFileType 1),
                         its SubIFD the raw CFA image
    preview_orient6.dng  the same with Orientation 6 (rotate 90 CW to view)
    mosaic.dng           IFD0 is the raw CFA image itself, no preview
    mosaic_orient6.dng   the same with Orientation 6, and its Exif and GPS IFDs after
                         the raw data (past the 64 KiB libexif reads: LibRaw's values)
    truncated.dng        mosaic.dng cut in the middle of its raw data
    garbage.dng          mosaic.dng's headers with the raw strip's offset past the end
and expected.json: the EXIF values written, for the test to compare.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy
import tifffile

BLACK = 512
WHITE = 16383

EXIF = {
    "make": "RapidPhoto",
    "model": "Bayer Test 1",
    "lens": "RP 35mm F2.8",
    "exposure_time": [1, 250],
    "f_number": [28, 10],
    "iso": 400,
    "focal_length": [35, 1],
    "taken_at": "2021:06:15 14:30:45",
    "gps": {"lat": [48, 51, 3024, 100], "lat_ref": "N",
            "lon": [2, 17, 4020, 100], "lon_ref": "E", "alt": [35, 1]},
}

# XYZ (D65) -> linear sRGB (IEC 61966-2-1)
XYZ_TO_SRGB = [[3.2404542, -1.5371385, -0.4985314],
               [-0.9692660, 1.8760108, 0.0415560],
               [0.0556434, -0.2040259, 1.0572252]]

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL = 1, 2, 3, 4, 5, 7, 10
SIZES = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, SRATIONAL: 8}


def decode(path):
    """The photo's stored pixels, uint8 HxWx3, with the vips command."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "pixels.raw")
        out = subprocess.run(["vipsheader", "-f", "width", path], check=True,
                             capture_output=True, text=True)
        width = int(out.stdout)
        out = subprocess.run(["vipsheader", "-f", "height", path], check=True,
                             capture_output=True, text=True)
        height = int(out.stdout)
        out = subprocess.run(["vipsheader", "-f", "bands", path], check=True,
                             capture_output=True, text=True)
        if int(out.stdout) != 3:
            sys.exit("make_dng: %s is not a 3-band photo" % path)
        subprocess.run(["vips", "rawsave", path, raw], check=True)
        pixels = numpy.fromfile(raw, dtype=numpy.uint8)
    return pixels.reshape(height, width, 3)


def srgb_to_linear(v):
    v = v.astype(numpy.float64) / 255.0
    return numpy.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def mosaic(rgb):
    """RGGB Bayer CFA, 14-bit samples in a uint16 array."""
    lin = srgb_to_linear(rgb)
    h, w = lin.shape[0] & ~1, lin.shape[1] & ~1
    lin = lin[:h, :w]
    cfa = numpy.empty((h, w), dtype=numpy.float64)
    cfa[0::2, 0::2] = lin[0::2, 0::2, 0]
    cfa[0::2, 1::2] = lin[0::2, 1::2, 1]
    cfa[1::2, 0::2] = lin[1::2, 0::2, 1]
    cfa[1::2, 1::2] = lin[1::2, 1::2, 2]
    return numpy.round(BLACK + cfa * (WHITE - BLACK)).astype("<u2")


def jpeg(rgb, quality=92):
    """Baseline JPEG of the pixels as given (no EXIF), with the vips command."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "p.raw")
        v = os.path.join(tmp, "p.v")
        out = os.path.join(tmp, "p.jpg")
        numpy.ascontiguousarray(rgb).tofile(raw)
        subprocess.run(["vips", "rawload", raw, v, str(rgb.shape[1]), str(rgb.shape[0]), "3"],
                       check=True)
        subprocess.run(["vips", "copy", v, v + ".srgb.v", "--interpretation", "srgb"], check=True)
        subprocess.run(["vips", "jpegsave", v + ".srgb.v", out, "--Q", str(quality), "--strip"],
                       check=True)
        with open(out, "rb") as f:
            return f.read()


def rational(num, den=1):
    return (num, den)


def srational(x):
    return (int(round(x * 10000)), 10000)


class Ifd:
    """One IFD: entries (tag, type, values) and the blobs its offsets name."""

    def __init__(self):
        self.entries = {}

    def add(self, tag, kind, values):
        if kind == ASCII:
            values = values.encode() + b"\0"
        elif not isinstance(values, (list, tuple, bytes)):
            values = [values]
        self.entries[tag] = (kind, values)

    def size(self):
        n = 2 + 12 * len(self.entries) + 4
        for kind, values in self.entries.values():
            b = self._values(kind, values)
            if len(b) > 4:
                n += (len(b) + 1) & ~1
        return n

    @staticmethod
    def _values(kind, values):
        if kind in (ASCII, UNDEFINED) or (kind == BYTE and isinstance(values, bytes)):
            return bytes(values)
        out = b""
        for v in values:
            if kind == BYTE:
                out += struct.pack("<B", v)
            elif kind == SHORT:
                out += struct.pack("<H", v)
            elif kind == LONG:
                out += struct.pack("<I", v)
            elif kind == RATIONAL:
                out += struct.pack("<II", *v)
            elif kind == SRATIONAL:
                out += struct.pack("<ii", *v)
        return out

    def bytes(self, at):
        """The IFD written at file offset `at` (next IFD 0)."""
        tags = sorted(self.entries)
        head = struct.pack("<H", len(tags))
        extra = b""
        extra_at = at + 2 + 12 * len(tags) + 4
        for tag in tags:
            kind, values = self.entries[tag]
            b = self._values(kind, values)
            count = len(b) // SIZES[kind]
            if len(b) <= 4:
                head += struct.pack("<HHI", tag, kind, count) + b.ljust(4, b"\0")
            else:
                head += struct.pack("<HHII", tag, kind, count, extra_at + len(extra))
                extra += b + (b"\0" if len(b) & 1 else b"")
        return head + struct.pack("<I", 0) + extra


def common_tags(ifd, orientation):
    ifd.add(271, ASCII, EXIF["make"])
    ifd.add(272, ASCII, EXIF["model"])
    ifd.add(274, SHORT, orientation)
    ifd.add(306, ASCII, EXIF["taken_at"])
    ifd.add(50706, BYTE, [1, 4, 0, 0])                       # DNGVersion
    ifd.add(50707, BYTE, [1, 1, 0, 0])                       # DNGBackwardVersion
    ifd.add(50708, ASCII, EXIF["make"] + " " + EXIF["model"])  # UniqueCameraModel
    ifd.add(50721, SRATIONAL, [srational(x) for row in XYZ_TO_SRGB for x in row])  # ColorMatrix1
    ifd.add(50778, SHORT, 21)                                # CalibrationIlluminant1 D65
    ifd.add(50728, RATIONAL, [rational(1), rational(1), rational(1)])  # AsShotNeutral


def raw_tags(ifd, cfa, offset):
    h, w = cfa.shape
    ifd.add(254, LONG, 0)
    ifd.add(256, LONG, w)
    ifd.add(257, LONG, h)
    ifd.add(258, SHORT, 16)
    ifd.add(259, SHORT, 1)
    ifd.add(262, SHORT, 32803)                               # CFA
    ifd.add(273, LONG, offset)
    ifd.add(277, SHORT, 1)
    ifd.add(278, LONG, h)
    ifd.add(279, LONG, cfa.nbytes)
    ifd.add(284, SHORT, 1)
    ifd.add(33421, SHORT, [2, 2])                            # CFARepeatPatternDim
    ifd.add(33422, BYTE, [0, 1, 1, 2])                       # CFAPattern RGGB
    ifd.add(50710, BYTE, [0, 1, 2])                          # CFAPlaneColor
    ifd.add(50711, SHORT, 1)                                 # CFALayout
    ifd.add(50714, LONG, BLACK)                              # BlackLevel
    ifd.add(50717, LONG, WHITE)                              # WhiteLevel


def exif_ifd():
    ifd = Ifd()
    ifd.add(33434, RATIONAL, [tuple(EXIF["exposure_time"])])
    ifd.add(33437, RATIONAL, [tuple(EXIF["f_number"])])
    ifd.add(34855, SHORT, EXIF["iso"])
    ifd.add(36864, UNDEFINED, b"0231")
    ifd.add(36867, ASCII, EXIF["taken_at"])
    ifd.add(37386, RATIONAL, [tuple(EXIF["focal_length"])])
    ifd.add(42036, ASCII, EXIF["lens"])
    return ifd


def gps_ifd():
    g = EXIF["gps"]
    ifd = Ifd()
    ifd.add(0, BYTE, [2, 3, 0, 0])
    ifd.add(1, ASCII, g["lat_ref"])
    ifd.add(2, RATIONAL, [(g["lat"][0], 1), (g["lat"][1], 1), (g["lat"][2], g["lat"][3])])
    ifd.add(3, ASCII, g["lon_ref"])
    ifd.add(4, RATIONAL, [(g["lon"][0], 1), (g["lon"][1], 1), (g["lon"][2], g["lon"][3])])
    ifd.add(5, BYTE, [0])
    ifd.add(6, RATIONAL, [tuple(g["alt"])])
    return ifd


def build(cfa, preview, orientation, tail=False):
    """The DNG's bytes: header, IFD0, [raw SubIFD], Exif IFD, GPS IFD, data;
    with tail, the Exif and GPS IFDs come after the data instead."""
    h, w = cfa.shape
    exif, gps = exif_ifd(), gps_ifd()
    ifd0 = Ifd()
    raw = Ifd() if preview else ifd0
    # Pass 1 with placeholder offsets for the sizes, pass 2 with the real ones
    order = ["ifd0", "raw", "exif", "gps", "cfa", "jpeg"]
    if tail:
        order = ["ifd0", "raw", "cfa", "jpeg", "exif", "gps"]
    ifds = {"ifd0": ifd0, "raw": raw if preview else None, "exif": exif, "gps": gps}
    for _ in range(2):
        offsets = {}
        at = 8
        for name in order:
            offsets[name] = at
            if name == "cfa":
                at += cfa.nbytes
            elif name == "jpeg":
                at += (len(preview) + 3) & ~3 if preview else 0
            elif ifds[name] is not None:
                at += (ifds[name].size() + 3) & ~3
        common_tags(ifd0, orientation)
        ifd0.add(34665, LONG, offsets["exif"])
        ifd0.add(34853, LONG, offsets["gps"])
        raw_tags(raw, cfa, offsets["cfa"])
        if preview:
            ifd0.add(254, LONG, 1)                           # a reduced-resolution image
            ifd0.add(256, LONG, w)
            ifd0.add(257, LONG, h)
            ifd0.add(258, SHORT, [8, 8, 8])
            ifd0.add(259, SHORT, 7)                          # JPEG
            ifd0.add(262, SHORT, 6)                          # YCbCr
            ifd0.add(273, LONG, offsets["jpeg"])
            ifd0.add(277, SHORT, 3)
            ifd0.add(278, LONG, h)
            ifd0.add(279, LONG, len(preview))
            ifd0.add(284, SHORT, 1)
            ifd0.add(330, LONG, offsets["raw"])              # SubIFDs
    out = bytearray(b"II*\0" + struct.pack("<I", 8))
    for name in order:
        assert len(out) == offsets[name], name
        if name == "cfa":
            out += cfa.tobytes()
        elif name == "jpeg":
            if preview:
                out += preview + b"\0" * (((len(preview) + 3) & ~3) - len(preview))
        elif ifds[name] is not None:
            b = ifds[name].bytes(offsets[name])
            out += b + b"\0" * (((len(b) + 3) & ~3) - len(b))
    return bytes(out)


def check(path, orientation, preview, cfa):
    """Read the file back with tifffile: the tags and the raw samples."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tags = page.tags
        assert bytes(tags["DNGVersion"].value) == bytes([1, 4, 0, 0]), path
        assert int(tags["Orientation"].value) == orientation, path
        assert tags["Make"].value == EXIF["make"], path
        raw = page.pages[0] if preview else page
        if preview:
            assert int(tags["NewSubfileType"].value) == 1, path
            assert int(raw.tags["PhotometricInterpretation"].value) == 32803, path
        assert raw.tags["CFARepeatPatternDim"].value == (2, 2), path
        assert bytes(raw.tags["CFAPattern"].value) == bytes([0, 1, 1, 2]), path
        assert numpy.array_equal(raw.asarray(), cfa), path


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_dng.py SOURCE.jpg OUTDIR")
    source, outdir = sys.argv[1], sys.argv[2]
    rgb = decode(source)
    cfa = mosaic(rgb)
    h, w = cfa.shape
    preview = jpeg(rgb[:h, :w])
    made = {}
    for name, has_preview, orientation in (("preview", True, 1), ("preview_orient6", True, 6),
                                           ("mosaic", False, 1), ("mosaic_orient6", False, 6)):
        data = build(cfa, preview if has_preview else None, orientation,
                     tail=name == "mosaic_orient6")
        path = os.path.join(outdir, name + ".dng")
        with open(path, "wb") as f:
            f.write(data)
        check(path, orientation, has_preview, cfa)
        made[name] = data
    mosaic_dng = made["mosaic"]
    with open(os.path.join(outdir, "truncated.dng"), "wb") as f:
        f.write(mosaic_dng[: len(mosaic_dng) // 2])
    # The raw strip's offset moved past the end of the file
    data = bytearray(mosaic_dng)
    ifd0 = 8
    count = struct.unpack_from("<H", data, ifd0)[0]
    for i in range(count):
        entry = ifd0 + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 273:
            struct.pack_into("<I", data, entry + 8, len(data) + 4096)
    with open(os.path.join(outdir, "garbage.dng"), "wb") as f:
        f.write(data)
    g = EXIF["gps"]
    expected = {
        "width": w, "height": h,
        "make": EXIF["make"], "model": EXIF["model"], "lens": EXIF["lens"],
        "exposure_time": EXIF["exposure_time"][0] / EXIF["exposure_time"][1],
        "f_number": EXIF["f_number"][0] / EXIF["f_number"][1],
        "iso": EXIF["iso"],
        "focal_length": EXIF["focal_length"][0] / EXIF["focal_length"][1],
        "taken_at": EXIF["taken_at"].replace(":", "-", 2).replace(" ", "T"),
        "lat": g["lat"][0] + g["lat"][1] / 60 + g["lat"][2] / g["lat"][3] / 3600,
        "lon": g["lon"][0] + g["lon"][1] / 60 + g["lon"][2] / g["lon"][3] / 3600,
        "alt": g["alt"][0] / g["alt"][1],
    }
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
