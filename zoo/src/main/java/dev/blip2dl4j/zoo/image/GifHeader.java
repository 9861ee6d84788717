package dev.blip2dl4j.zoo.image;

/**
 * A GIF's logical screen and the placement of its first frame. Pillow's image is the whole screen,
 * grown where the first frame overhangs it: the frame is drawn at its offset over a screen filled with
 * the frame's transparent index, or with index 0 when it has none. The JDK reader returns the frame alone.
 */
record GifHeader(int screenWidth, int screenHeight, int left, int top, int frameWidth, int frameHeight,
                 int transparentIndex) {
    static final int NO_TRANSPARENCY = -1;

    /** The size of Pillow's image. */
    int width() {
        return Math.max(screenWidth, left + frameWidth);
    }

    int height() {
        return Math.max(screenHeight, top + frameHeight);
    }

    /** Null when the data ends before the first image descriptor. */
    static GifHeader parse(byte[] data) {
        if (data.length < 13) return null;
        int screenWidth = u16(data, 6), screenHeight = u16(data, 8);
        int flags = data[10] & 0xFF;
        int at = 13 + ((flags & 0x80) != 0 ? 3 << ((flags & 7) + 1) : 0);
        int transparent = NO_TRANSPARENCY;
        while (at < data.length) {
            int block = data[at] & 0xFF;
            if (block == 0x2C) {
                if (at + 10 > data.length) return null;
                return new GifHeader(screenWidth, screenHeight, u16(data, at + 1), u16(data, at + 3),
                        u16(data, at + 5), u16(data, at + 7), transparent);
            }
            if (block != 0x21 || at + 2 >= data.length) return null;
            int label = data[at + 1] & 0xFF;
            at += 2;
            // graphic control extension: 4 bytes, the transparent index in the last, flagged in the first
            if (label == 0xF9 && at + 5 <= data.length && (data[at] & 0xFF) >= 4) {
                transparent = (data[at + 1] & 1) != 0 ? data[at + 4] & 0xFF : NO_TRANSPARENCY;
            }
            while (at < data.length && data[at] != 0) at += (data[at] & 0xFF) + 1;
            at++;
        }
        return null;
    }

    private static int u16(byte[] data, int at) {
        return (data[at] & 0xFF) | ((data[at + 1] & 0xFF) << 8);
    }
}
