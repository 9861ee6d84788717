package dev.blip2dl4j.zoo.image;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The PNG facts that decide how Pillow decodes a file: size, bit depth and colour type from IHDR, and
 * the eXIf chunk (wherever it is: Pillow loads the image to find one after IDAT). The JDK reader turns
 * a tRNS chunk into an alpha band, so the colour type of the file, not of the decoded image, says
 * which Pillow mode (and so which 16-bit rule) applies.
 */
record PngHeader(int width, int height, int bitDepth, int colorType, byte[] exif) {
    static final int GRAY = 0, RGB = 2, PALETTE = 3, GRAY_ALPHA = 4, RGB_ALPHA = 6;

    /** Null when the file ends before a complete IHDR. */
    static PngHeader parse(byte[] data) {
        if (data.length < 33 || !type(data, 12, "IHDR")) return null;
        long w = u32(data, 16), h = u32(data, 20);
        byte[] exif = null;
        for (long at = 8; at + 8 <= data.length; ) {
            long length = u32(data, (int) at);
            if (type(data, (int) at + 4, "eXIf") && exif == null && at + 8 + length <= data.length) {
                exif = Arrays.copyOfRange(data, (int) at + 8, (int) (at + 8 + length));
            }
            if (type(data, (int) at + 4, "IEND")) break;
            at += 12 + length;
        }
        return new PngHeader((int) Math.min(w, Integer.MAX_VALUE), (int) Math.min(h, Integer.MAX_VALUE),
                data[24] & 0xFF, data[25] & 0xFF, exif);
    }

    /** The mode Pillow opens the file in (PngImagePlugin's table of bit depth and colour type). */
    String pillowMode() {
        return switch (colorType) {
            case GRAY -> bitDepth == 1 ? "1" : bitDepth == 16 ? "I" : "L";
            case RGB -> "RGB";
            case PALETTE -> "P";
            case GRAY_ALPHA -> bitDepth == 16 ? "RGBA" : "LA";
            case RGB_ALPHA -> "RGBA";
            default -> "?";
        };
    }

    private static boolean type(byte[] data, int at, String name) {
        byte[] n = name.getBytes(StandardCharsets.ISO_8859_1);
        return at + 4 <= data.length && Arrays.equals(data, at, at + 4, n, 0, 4);
    }

    private static long u32(byte[] data, int at) {
        return ((long) (data[at] & 0xFF) << 24) | ((data[at + 1] & 0xFF) << 16) | ((data[at + 2] & 0xFF) << 8)
                | (data[at + 3] & 0xFF);
    }
}
