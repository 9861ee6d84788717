package dev.blip2dl4j.zoo.image;

/**
 * An image as Pillow's {@code Image.open(f).convert("RGB")} holds it: 8-bit samples, interleaved
 * R, G, B, row by row from the top left. {@code sourceMode} is the Pillow mode the file decoded to
 * before that conversion ("RGB", "RGBA", "L", "LA", "P", "I", "1", "CMYK"); it decides whether a
 * processor told not to convert to RGB can use the image at all. The array is shared, not copied
 * (images are large and pass through several steps): treat it as read-only.
 */
public record DecodedImage(int width, int height, byte[] rgb, String sourceMode) {
    public DecodedImage {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image size " + width + " x " + height);
        }
        if (rgb.length != Math.multiplyExact(Math.multiplyExact(width, height), 3)) {
            throw new IllegalArgumentException(rgb.length + " bytes for a " + width + " x " + height + " RGB image");
        }
    }

    /** Sample {@code channel} (0 red, 1 green, 2 blue) of the pixel at column x, row y, 0..255. */
    public int sample(int x, int y, int channel) {
        return rgb[(y * width + x) * 3 + channel] & 0xFF;
    }
}
