package dev.blip2dl4j.zoo.image;

import java.awt.image.Raster;

/**
 * Turns the samples of a JPEG, in the colour space they were compressed in, into the RGB bytes that
 * Pillow's {@code Image.open(f).convert("RGB")} produces with libjpeg(-turbo):
 * <ul>
 * <li>YCbCr: libjpeg's integer conversion (jdcolor.c: 16 fractional bits, rounded tables, clamped);</li>
 * <li>CMYK and YCCK: Pillow opens every 4-component JPEG as "CMYK;I", the inverted CMYK of Adobe
 *     files (libjpeg has already turned YCCK into CMYK), and converts that with its own integer
 *     formula (Convert.c's cmyk2rgb). No colour profile is applied, embedded or not.</li>
 * </ul>
 */
final class JpegColor {
    private static final int SCALE_BITS = 16;
    private static final int ONE_HALF = 1 << (SCALE_BITS - 1);
    // FIX(x) = (int) (x * 65536 + 0.5), the constants of jdcolor.c
    private static final int FIX_1_40200 = 91881;
    private static final int FIX_1_77200 = 116130;
    private static final int FIX_0_71414 = 46802;
    private static final int FIX_0_34414 = 22554;

    private JpegColor() {
    }

    static DecodedImage toRgb(Raster raster, JpegHeader.ColorSpace space) {
        int w = raster.getWidth(), h = raster.getHeight(), bands = raster.getNumBands();
        int expected = switch (space) {
            case GRAYSCALE -> 1;
            case YCBCR, RGB -> 3;
            case CMYK, YCCK -> 4;
        };
        if (bands != expected) {
            throw new IllegalStateException("the JPEG reader returned " + bands + " bands for " + space);
        }
        byte[] out = new byte[w * h * 3];
        int[] row = new int[w * bands];
        int o = 0;
        for (int y = 0; y < h; y++) {
            raster.getPixels(raster.getMinX(), raster.getMinY() + y, w, 1, row);
            for (int x = 0, i = 0; x < w; x++, i += bands) {
                switch (space) {
                    case GRAYSCALE -> {
                        out[o] = out[o + 1] = out[o + 2] = (byte) row[i];
                    }
                    case RGB -> {
                        out[o] = (byte) row[i];
                        out[o + 1] = (byte) row[i + 1];
                        out[o + 2] = (byte) row[i + 2];
                    }
                    case YCBCR -> ycc(row[i], row[i + 1], row[i + 2], out, o);
                    case CMYK -> cmyk(255 - row[i], 255 - row[i + 1], 255 - row[i + 2], 255 - row[i + 3], out, o);
                    case YCCK -> {
                        // libjpeg's ycck_cmyk_convert gives C = 255 - R (clamped) and passes K through;
                        // Pillow's inversion then yields R itself and 255 - K.
                        ycc(row[i], row[i + 1], row[i + 2], out, o);
                        cmyk(out[o] & 0xFF, out[o + 1] & 0xFF, out[o + 2] & 0xFF, 255 - row[i + 3], out, o);
                    }
                }
                o += 3;
            }
        }
        return new DecodedImage(w, h, out, switch (space) {
            case GRAYSCALE -> "L";
            case YCBCR, RGB -> "RGB";
            case CMYK, YCCK -> "CMYK";
        });
    }

    private static void ycc(int luma, int cb, int cr, byte[] out, int o) {
        cb -= 128;
        cr -= 128;
        out[o] = clamp(luma + ((FIX_1_40200 * cr + ONE_HALF) >> SCALE_BITS));
        out[o + 1] = clamp(luma + ((-FIX_0_34414 * cb - FIX_0_71414 * cr + ONE_HALF) >> SCALE_BITS));
        out[o + 2] = clamp(luma + ((FIX_1_77200 * cb + ONE_HALF) >> SCALE_BITS));
    }

    /** Pillow's cmyk2rgb on Pillow's (already inverted) CMYK values. */
    private static void cmyk(int c, int m, int y, int k, byte[] out, int o) {
        int nk = 255 - k;
        out[o] = clamp(nk - mulDiv255(c, nk));
        out[o + 1] = clamp(nk - mulDiv255(m, nk));
        out[o + 2] = clamp(nk - mulDiv255(y, nk));
    }

    /** a * b / 255 rounded, the way Pillow computes it without a division. */
    private static int mulDiv255(int a, int b) {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    private static byte clamp(int v) {
        return (byte) (v < 0 ? 0 : Math.min(v, 255));
    }
}
