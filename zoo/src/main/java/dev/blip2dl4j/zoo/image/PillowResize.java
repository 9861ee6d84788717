package dev.blip2dl4j.zoo.image;

/**
 * Pillow's {@code Image.resize(size, resample, reducing_gap=None)} of an 8-bit RGB image, value for
 * value (Resample.c and Geometry.c, Pillow 9.4 to 11). No Java resizer matches it (research facts §3.3):
 * Pillow widens the kernel by the downscale factor, so shrinking averages every source pixel instead
 * of sampling a few, and it works in fixed point, rounding to 8 bits after each pass.
 * <ul>
 * <li>Convolution filters: separable, horizontal pass first over only the source rows the vertical
 *     pass will read. Weights are computed in double, normalised to sum 1 and rounded to integers
 *     with {@value #PRECISION_BITS} fractional bits; each output is the rounded, clipped sum.</li>
 * <li>NEAREST: the source pixel under each output pixel's centre, positions accumulated in double
 *     by repeated addition exactly as Pillow steps through them.</li>
 * </ul>
 * The algorithm is Pillow's (HPND licence), re-implemented here from its description.
 */
public final class PillowResize {
    /** 32-bit accumulators: 8 bits of sample, 2 bits of headroom for negative lobes and overshoot. */
    static final int PRECISION_BITS = 32 - 8 - 2;

    private PillowResize() {
    }

    public static DecodedImage resize(DecodedImage image, int width, int height, ResampleFilter filter) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("target size " + width + " x " + height);
        }
        if (width == image.width() && height == image.height()) return image;
        byte[] out = filter == ResampleFilter.NEAREST
                ? nearest(image, width, height)
                : convolve(image, width, height, filter);
        return new DecodedImage(width, height, out, image.sourceMode());
    }

    /** Per output pixel along one axis: the first source index, how many follow, and their weights. */
    private record Coefficients(int[] first, int[] count, int[] weights, int kernelSize) {
    }

    private static Coefficients coefficients(int inSize, int outSize, ResampleFilter filter) {
        double scale = (double) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = filter.support() * filterScale;
        int kernelSize = (int) Math.ceil(support) * 2 + 1;
        int[] first = new int[outSize], count = new int[outSize];
        int[] weights = new int[outSize * kernelSize];
        double[] k = new double[kernelSize];
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale;
            double inverseScale = 1.0 / filterScale; // Pillow multiplies by the inverse: it rounds differently
            int xmin = Math.max((int) (center - support + 0.5), 0);
            int xmax = Math.min((int) (center + support + 0.5), inSize) - xmin;
            double sum = 0.0;
            for (int x = 0; x < xmax; x++) {
                k[x] = filter.weight((x + xmin - center + 0.5) * inverseScale);
                sum += k[x];
            }
            for (int x = 0; x < xmax; x++) {
                double w = sum != 0.0 ? k[x] / sum : k[x];
                weights[xx * kernelSize + x] = (int) (w < 0 ? -0.5 + w * (1 << PRECISION_BITS)
                        : 0.5 + w * (1 << PRECISION_BITS));
            }
            first[xx] = xmin;
            count[xx] = xmax;
        }
        return new Coefficients(first, count, weights, kernelSize);
    }

    private static byte[] convolve(DecodedImage image, int width, int height, ResampleFilter filter) {
        Coefficients vertical = coefficients(image.height(), height, filter);
        byte[] pixels = image.rgb();
        int w = image.width();
        int rowShift = 0;
        if (width != image.width()) {
            int firstRow = vertical.first()[0];
            int lastRow = vertical.first()[height - 1] + vertical.count()[height - 1];
            pixels = horizontal(pixels, w, firstRow, lastRow - firstRow, coefficients(w, width, filter));
            w = width;
            rowShift = firstRow;
        }
        if (height == image.height()) return pixels;
        return vertical(pixels, w, rowShift, vertical);
    }

    private static byte[] horizontal(byte[] in, int inWidth, int firstRow, int rows, Coefficients c) {
        int outWidth = c.first().length;
        byte[] out = new byte[outWidth * rows * 3];
        for (int y = 0, o = 0; y < rows; y++) {
            int rowStart = (y + firstRow) * inWidth * 3;
            for (int xx = 0; xx < outWidth; xx++, o += 3) {
                int k = xx * c.kernelSize(), at = rowStart + c.first()[xx] * 3;
                int r = 1 << (PRECISION_BITS - 1), g = r, b = r;
                for (int x = 0; x < c.count()[xx]; x++, at += 3) {
                    int weight = c.weights()[k + x];
                    r += (in[at] & 0xFF) * weight;
                    g += (in[at + 1] & 0xFF) * weight;
                    b += (in[at + 2] & 0xFF) * weight;
                }
                out[o] = clip8(r);
                out[o + 1] = clip8(g);
                out[o + 2] = clip8(b);
            }
        }
        return out;
    }

    /** @param rowShift the index of the first source row that {@code in} holds */
    private static byte[] vertical(byte[] in, int width, int rowShift, Coefficients c) {
        int outHeight = c.first().length, stride = width * 3;
        byte[] out = new byte[stride * outHeight];
        for (int yy = 0, o = 0; yy < outHeight; yy++) {
            int k = yy * c.kernelSize(), top = (c.first()[yy] - rowShift) * stride;
            for (int xx = 0; xx < width; xx++, o += 3) {
                int r = 1 << (PRECISION_BITS - 1), g = r, b = r;
                for (int y = 0, at = top + xx * 3; y < c.count()[yy]; y++, at += stride) {
                    int weight = c.weights()[k + y];
                    r += (in[at] & 0xFF) * weight;
                    g += (in[at + 1] & 0xFF) * weight;
                    b += (in[at + 2] & 0xFF) * weight;
                }
                out[o] = clip8(r);
                out[o + 1] = clip8(g);
                out[o + 2] = clip8(b);
            }
        }
        return out;
    }

    private static byte clip8(int sum) {
        int v = sum >> PRECISION_BITS;
        return (byte) (v < 0 ? 0 : Math.min(v, 255));
    }

    /** Geometry.c's scale-only affine transform with fill: pixels whose centre falls outside stay 0. */
    private static byte[] nearest(DecodedImage image, int width, int height) {
        int inW = image.width(), inH = image.height();
        double stepX = (double) inW / width, stepY = (double) inH / height;
        int[] column = new int[width];
        double xo = stepX * 0.5;
        for (int x = 0; x < width; x++, xo += stepX) {
            column[x] = xo < 0 ? -1 : (int) xo;
        }
        byte[] in = image.rgb(), out = new byte[width * height * 3];
        double yo = stepY * 0.5;
        for (int y = 0; y < height; y++, yo += stepY) {
            int row = yo < 0 ? -1 : (int) yo;
            if (row < 0 || row >= inH) continue;
            for (int x = 0; x < width; x++) {
                if (column[x] >= 0 && column[x] < inW) {
                    System.arraycopy(in, (row * inW + column[x]) * 3, out, (y * width + x) * 3, 3);
                }
            }
        }
        return out;
    }
}
