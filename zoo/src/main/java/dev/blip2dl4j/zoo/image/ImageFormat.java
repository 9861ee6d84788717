package dev.blip2dl4j.zoo.image;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Image file formats told apart by their first bytes, never by the file name: a PNG saved as
 * {@code photo.jpg} is still a PNG, and Pillow treats it as one. Only some are decoded; the others are
 * recognised so that the error can name what the file is.
 */
public enum ImageFormat {
    PNG("PNG", true),
    JPEG("JPEG", true),
    GIF("GIF", true),
    BMP("BMP", true),
    WEBP("WebP", false),
    TIFF("TIFF", false),
    HEIF("HEIF/HEIC/AVIF", false),
    JPEG2000("JPEG 2000", false),
    JPEG_XL("JPEG XL", false),
    ICO("ICO", false),
    PSD("Photoshop PSD", false),
    PDF("PDF", false),
    SVG("SVG", false),
    UNKNOWN("unknown", false);

    /** Enough leading bytes for {@link #detect}. */
    public static final int SNIFF_BYTES = 32;

    private final String displayName;
    private final boolean decodable;

    ImageFormat(String displayName, boolean decodable) {
        this.displayName = displayName;
        this.decodable = decodable;
    }

    public String displayName() {
        return displayName;
    }

    /** Whether {@link ImageLoader} decodes this format. */
    public boolean decodable() {
        return decodable;
    }

    public static ImageFormat detect(byte[] head) {
        if (startsWith(head, 0, 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n')) return PNG;
        if (startsWith(head, 0, 0xFF, 0xD8, 0xFF)) return JPEG;
        if (ascii(head, 0, "GIF87a") || ascii(head, 0, "GIF89a")) return GIF;
        if (ascii(head, 0, "BM") && head.length >= 18) return BMP;
        if (ascii(head, 0, "RIFF") && ascii(head, 8, "WEBP")) return WEBP;
        if (ascii(head, 0, "II*\0") || ascii(head, 0, "MM\0*") || ascii(head, 0, "II+\0") || ascii(head, 0, "MM\0+")) {
            return TIFF;
        }
        if (ascii(head, 4, "ftyp") && (ascii(head, 8, "hei") || ascii(head, 8, "mif1") || ascii(head, 8, "msf1")
                || ascii(head, 8, "avif") || ascii(head, 8, "avis") || ascii(head, 8, "hevc"))) {
            return HEIF;
        }
        if (startsWith(head, 0, 0, 0, 0, 0x0C, 'j', 'P', ' ', ' ') || startsWith(head, 0, 0xFF, 0x4F, 0xFF, 0x51)) {
            return JPEG2000;
        }
        if (startsWith(head, 0, 0xFF, 0x0A) || startsWith(head, 0, 0, 0, 0, 0x0C, 'J', 'X', 'L', ' ')) return JPEG_XL;
        if (startsWith(head, 0, 0, 0, 1, 0) || startsWith(head, 0, 0, 0, 2, 0)) return ICO;
        if (ascii(head, 0, "8BPS")) return PSD;
        if (ascii(head, 0, "%PDF")) return PDF;
        if (new String(head, StandardCharsets.ISO_8859_1).stripLeading().startsWith("<svg")) return SVG;
        return UNKNOWN;
    }

    private static boolean startsWith(byte[] head, int at, int... expected) {
        if (head.length < at + expected.length) return false;
        for (int i = 0; i < expected.length; i++) {
            if ((head[at + i] & 0xFF) != expected[i]) return false;
        }
        return true;
    }

    private static boolean ascii(byte[] head, int at, String expected) {
        byte[] e = expected.getBytes(StandardCharsets.ISO_8859_1);
        return head.length >= at + e.length && Arrays.equals(head, at, at + e.length, e, 0, e.length);
    }
}
