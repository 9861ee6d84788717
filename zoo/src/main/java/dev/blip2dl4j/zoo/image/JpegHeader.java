package dev.blip2dl4j.zoo.image;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * What libjpeg reads from a JPEG's markers before the first scan and uses to pick the colour space of
 * the compressed data: the frame's component count and ids, whether a JFIF (APP0) or Adobe (APP14)
 * marker was seen, and the Adobe transform flag. The JDK's raster read hands back the samples in that
 * colour space without converting them, so we must reach the same conclusion libjpeg reaches inside
 * Pillow. Also keeps the first EXIF (APP1) payload, which Pillow reads the orientation from.
 */
record JpegHeader(int frameType, int width, int height, int[] componentIds, boolean sawJfif, boolean sawAdobe,
                  int adobeTransform, byte[] exif) {

    /** The colour space of the compressed samples, as libjpeg decides it (jdapimin.c's rules). */
    enum ColorSpace { GRAYSCALE, YCBCR, RGB, CMYK, YCCK }

    static final int SOF_BASELINE = 0xC0;

    /** Reads markers up to the first SOS; null when the data ends before a frame header was seen. */
    static JpegHeader parse(byte[] data) {
        int frameType = -1, width = 0, height = 0;
        int[] ids = null;
        boolean jfif = false, adobe = false;
        int transform = 0;
        byte[] exif = null;
        int i = 2;
        while (i + 4 <= data.length) {
            if ((data[i] & 0xFF) != 0xFF) {
                i++; // libjpeg skips garbage before a marker (with a warning)
                continue;
            }
            int marker = data[i + 1] & 0xFF;
            if (marker == 0xFF) {
                i++; // fill byte
                continue;
            }
            if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
                i += 2;
                continue;
            }
            if (marker == 0xD9 || marker == 0xDA) break;
            int length = u16(data, i + 2);
            int start = i + 4, end = Math.min(data.length, i + 2 + length);
            if (length < 2) break;
            if (isFrameHeader(marker) && end - start >= 6) {
                frameType = marker;
                height = u16(data, start + 1);
                width = u16(data, start + 3);
                int n = data[start + 5] & 0xFF;
                ids = new int[Math.min(n, Math.max(0, (end - start - 6) / 3))];
                for (int c = 0; c < ids.length; c++) ids[c] = data[start + 6 + 3 * c] & 0xFF;
            } else if (marker == 0xE0 && end - start >= 14 && ascii(data, start, "JFIF\0")) {
                jfif = true;
            } else if (marker == 0xEE && end - start >= 12 && ascii(data, start, "Adobe")) {
                adobe = true;
                transform = data[start + 11] & 0xFF;
            } else if (marker == 0xE1 && exif == null && end - start >= 6 && ascii(data, start, "Exif\0\0")) {
                exif = Arrays.copyOfRange(data, start + 6, end);
            }
            i += 2 + length;
        }
        if (ids == null) return null;
        return new JpegHeader(frameType, width, height, ids, jfif, adobe, transform, exif);
    }

    /** libjpeg's default_decompress_parms: markers first, then the component ids, then a guess. */
    ColorSpace colorSpace() {
        switch (componentIds.length) {
            case 1:
                return ColorSpace.GRAYSCALE;
            case 3:
                if (sawJfif) return ColorSpace.YCBCR;
                if (sawAdobe) return adobeTransform == 0 ? ColorSpace.RGB : ColorSpace.YCBCR;
                if (componentIds[0] == 'R' && componentIds[1] == 'G' && componentIds[2] == 'B') return ColorSpace.RGB;
                return ColorSpace.YCBCR;
            case 4:
                if (sawAdobe) return adobeTransform == 0 ? ColorSpace.CMYK : ColorSpace.YCCK;
                return ColorSpace.CMYK;
            default:
                return null;
        }
    }

    /** Arithmetic-coded frames (SOF9..SOF15): libjpeg-turbo decodes them, the JDK's libjpeg 6b cannot. */
    boolean arithmetic() {
        return frameType >= 0xC9 && frameType <= 0xCF && frameType != 0xCC;
    }

    /** Lossless frames (SOF3, SOF7, SOF11, SOF15): Pillow's libjpeg(-turbo 2.x) refuses them. */
    boolean lossless() {
        return frameType == 0xC3 || frameType == 0xC7 || frameType == 0xCB || frameType == 0xCF;
    }

    private static boolean isFrameHeader(int marker) {
        return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    }

    private static int u16(byte[] data, int at) {
        return ((data[at] & 0xFF) << 8) | (data[at + 1] & 0xFF);
    }

    private static boolean ascii(byte[] data, int at, String expected) {
        byte[] e = expected.getBytes(StandardCharsets.ISO_8859_1);
        return data.length >= at + e.length && Arrays.equals(data, at, at + e.length, e, 0, e.length);
    }
}
