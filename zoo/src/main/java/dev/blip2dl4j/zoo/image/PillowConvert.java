package dev.blip2dl4j.zoo.image;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;

/**
 * Pillow's {@code convert("RGB")} applied to the samples the JDK decoded. Never {@code getRGB()}: it
 * colour-manages (a gray PNG comes back brightened by the linear-to-sRGB curve, research facts §3.1),
 * where Pillow only moves numbers:
 * <ul>
 * <li>palette images map through the palette; transparency is ignored;</li>
 * <li>alpha is dropped, not composited;</li>
 * <li>gray is repeated into R, G and B;</li>
 * <li>16-bit samples keep their high byte, except 16-bit gray without alpha, which Pillow opens as
 *     32-bit integers (mode "I") and clips at 255;</li>
 * <li>samples of fewer than 8 bits scale as {@code v * 255 / (2^bits - 1)}, truncated.</li>
 * </ul>
 */
final class PillowConvert {
    private PillowConvert() {
    }

    /** @param clipGray16 the image is a 16-bit gray PNG without an alpha channel (Pillow mode "I") */
    static byte[] toRgb(BufferedImage image, boolean clipGray16) {
        Raster raster = image.getRaster();
        ColorModel model = image.getColorModel();
        int w = raster.getWidth(), h = raster.getHeight(), bands = raster.getNumBands();
        byte[] out = new byte[w * h * 3];
        int[] row = new int[w * bands];
        if (model instanceof IndexColorModel palette) {
            for (int y = 0, o = 0; y < h; y++) {
                raster.getPixels(0, y, w, 1, row);
                for (int x = 0; x < w; x++, o += 3) {
                    int index = row[x * bands];
                    out[o] = (byte) palette.getRed(index);
                    out[o + 1] = (byte) palette.getGreen(index);
                    out[o + 2] = (byte) palette.getBlue(index);
                }
            }
            return out;
        }
        int colors = model.getNumColorComponents();
        int space = model.getColorSpace().getType();
        if (!(colors == 1 && space == ColorSpace.TYPE_GRAY) && !(colors == 3 && space == ColorSpace.TYPE_RGB)) {
            throw new IllegalStateException("decoded image has " + colors + " colour components in colour space type "
                    + space + "; expected gray or RGB");
        }
        int[] bits = new int[colors];
        for (int c = 0; c < colors; c++) bits[c] = raster.getSampleModel().getSampleSize(c);
        for (int y = 0, o = 0; y < h; y++) {
            raster.getPixels(0, y, w, 1, row);
            for (int x = 0; x < w; x++, o += 3) {
                int i = x * bands;
                if (colors == 1) {
                    out[o] = out[o + 1] = out[o + 2] = to8(row[i], bits[0], clipGray16);
                } else {
                    for (int c = 0; c < 3; c++) out[o + c] = to8(row[i + c], bits[c], false);
                }
            }
        }
        return out;
    }

    private static byte to8(int v, int bits, boolean clip16) {
        if (bits == 8) return (byte) v;
        if (bits == 16) return (byte) (clip16 ? Math.min(v, 255) : v >> 8);
        if (bits < 8) return (byte) (v * 255 / ((1 << bits) - 1));
        throw new IllegalStateException(bits + "-bit samples");
    }
}
