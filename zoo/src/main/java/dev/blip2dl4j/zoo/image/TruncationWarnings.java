package dev.blip2dl4j.zoo.image;

/**
 * The warnings by which ImageIO readers say that the data ended early. The JDK's JPEG reader (which
 * TwelveMonkeys delegates to) pads a truncated scan with grey, or a missing last scan with nothing,
 * and only warns "Truncated File - Missing EOI marker" (libjpeg's own text is "Premature end of JPEG
 * file"). Pillow 9.4 raises "image file is truncated" in every such case, also when only the final
 * EOI marker is missing, and so do we. libjpeg's other warnings (extraneous bytes before a marker, a
 * corrupt data segment followed by more data) are no errors in Pillow either.
 */
final class TruncationWarnings {
    private TruncationWarnings() {
    }

    static boolean meansTruncated(String warning) {
        return warning != null
                && (warning.contains("Missing EOI marker") || warning.contains("Premature end of JPEG file"));
    }
}
