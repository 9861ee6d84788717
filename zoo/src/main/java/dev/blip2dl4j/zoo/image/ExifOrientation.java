package dev.blip2dl4j.zoo.image;

/**
 * The EXIF orientation tag (0x0112 in IFD0) and the transpose that undoes it, as transformers'
 * {@code load_image} applies it through Pillow's {@code ImageOps.exif_transpose}. A camera stores the
 * sensor's raster and says in this tag how to turn it; without the turn a portrait photo reaches the
 * model lying on its side.
 */
final class ExifOrientation {
    static final int NORMAL = 1;

    private ExifOrientation() {
    }

    /**
     * The orientation in a TIFF-structured EXIF block (optionally still prefixed with "Exif\0\0"),
     * 1..8; {@link #NORMAL} when the block is absent, damaged or has no usable tag, as Pillow then
     * leaves the image alone.
     */
    static int read(byte[] exif) {
        if (exif == null) return NORMAL;
        int base = exif.length >= 6 && exif[0] == 'E' && exif[1] == 'x' && exif[2] == 'i' && exif[3] == 'f'
                && exif[4] == 0 && exif[5] == 0 ? 6 : 0;
        if (exif.length < base + 8) return NORMAL;
        boolean little;
        if (exif[base] == 'I' && exif[base + 1] == 'I') little = true;
        else if (exif[base] == 'M' && exif[base + 1] == 'M') little = false;
        else return NORMAL;
        long ifd = u32(exif, base + 4, little);
        if (ifd < 8 || base + ifd + 2 > exif.length) return NORMAL;
        int at = (int) (base + ifd);
        int entries = u16(exif, at, little);
        for (int e = 0; e < entries; e++) {
            int entry = at + 2 + 12 * e;
            if (entry + 12 > exif.length) return NORMAL;
            if (u16(exif, entry, little) != 0x0112) continue;
            int type = u16(exif, entry + 2, little);
            long count = u32(exif, entry + 4, little);
            if (count != 1) return NORMAL; // Pillow gets a tuple, which names no transpose
            long value = switch (type) {
                case 1, 6 -> exif[entry + 8] & 0xFF;        // BYTE, SBYTE
                case 3, 8 -> u16(exif, entry + 8, little);   // SHORT, SSHORT
                case 4, 9 -> u32(exif, entry + 8, little);   // LONG, SLONG
                default -> NORMAL;
            };
            return value >= 1 && value <= 8 ? (int) value : NORMAL;
        }
        return NORMAL;
    }

    /** The upright image: Pillow's transpose for each orientation (ImageOps.exif_transpose's table). */
    static DecodedImage apply(DecodedImage image, int orientation) {
        if (orientation == NORMAL) return image;
        int w = image.width(), h = image.height();
        boolean swap = orientation >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        byte[] in = image.rgb(), out = new byte[in.length];
        for (int y = 0, o = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++, o += 3) {
                // the source pixel of output (x, y)
                int sx, sy;
                switch (orientation) {
                    case 2 -> { sx = w - 1 - x; sy = y; }              // FLIP_LEFT_RIGHT
                    case 3 -> { sx = w - 1 - x; sy = h - 1 - y; }      // ROTATE_180
                    case 4 -> { sx = x; sy = h - 1 - y; }              // FLIP_TOP_BOTTOM
                    case 5 -> { sx = y; sy = x; }                      // TRANSPOSE
                    case 6 -> { sx = y; sy = h - 1 - x; }              // ROTATE_270 (clockwise quarter turn)
                    case 7 -> { sx = w - 1 - y; sy = h - 1 - x; }      // TRANSVERSE
                    case 8 -> { sx = w - 1 - y; sy = x; }              // ROTATE_90 (anticlockwise)
                    default -> throw new IllegalArgumentException("EXIF orientation " + orientation);
                }
                System.arraycopy(in, (sy * w + sx) * 3, out, o, 3);
            }
        }
        return new DecodedImage(ow, oh, out, image.sourceMode());
    }

    private static int u16(byte[] b, int at, boolean little) {
        int x = b[at] & 0xFF, y = b[at + 1] & 0xFF;
        return little ? x | (y << 8) : (x << 8) | y;
    }

    private static long u32(byte[] b, int at, boolean little) {
        long hi = u16(b, at + (little ? 2 : 0), little), lo = u16(b, at + (little ? 0 : 2), little);
        return (hi << 16) | lo;
    }
}
