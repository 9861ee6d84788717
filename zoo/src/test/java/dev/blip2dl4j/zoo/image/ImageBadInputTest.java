package dev.blip2dl4j.zoo.image;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Files we must refuse, each with a BadInputException that names the file and says what is wrong:
 * never a half-grey image from a truncated file, never an attempt to allocate a bomb's pixels.
 */
class ImageBadInputTest {
    @TempDir
    Path dir;

    private static byte[] fixture(String path) {
        return ImageFixtures.bytes(ImageFixtures.imagesPil().resolve(path));
    }

    private String refused(String name, byte[] data) throws IOException {
        return refused(name, data, ImageLoader.DEFAULT_MAX_PIXELS);
    }

    private String refused(String name, byte[] data, long maxPixels) throws IOException {
        Path file = Files.write(dir.resolve(name), data);
        BadInputException e = assertThrows(BadInputException.class, () -> ImageLoader.load(file, false, maxPixels));
        assertEquals(file, e.file());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        return e.getMessage();
    }

    private static void assertContains(String expected, String message) {
        assertTrue(message.contains(expected), "expected \"" + expected + "\" in: " + message);
    }

    @Test
    void truncatedJpegsAreErrorsNotGreyImages() throws IOException {
        byte[] baseline = fixture("images/rgb_q90.jpg"), progressive = fixture("images/rgb_prog.jpg");
        assertContains("truncated JPEG", refused("half.jpg", Arrays.copyOf(baseline, baseline.length / 2)));
        assertContains("truncated JPEG", refused("prog.jpg", Arrays.copyOf(progressive, progressive.length * 3 / 4)));
        assertContains("truncated JPEG", refused("cmyk.jpg", Arrays.copyOf(fixture("images/cmyk.jpg"), 100_000)));
        // Pillow 9.4 raises "image file is truncated" even when only the final EOI marker is missing
        assertContains("truncated JPEG", refused("noeoi.jpg", Arrays.copyOf(baseline, baseline.length - 2)));
        assertContains("JPEG", refused("header.jpg", Arrays.copyOf(baseline, 40)));
    }

    @Test
    void truncatedPngGifAndBmp() throws IOException {
        byte[] png = fixture("images/rgb_640x480.png");
        assertContains("truncated PNG", refused("cut.png", Arrays.copyOf(png, png.length / 2)));
        assertContains("truncated PNG", refused("head.png", Arrays.copyOf(png, 20)));
        byte[] gif = fixture("extra/img/gif_pal.gif");
        assertContains("GIF", refused("cut.gif", Arrays.copyOf(gif, gif.length * 9 / 10)));
        byte[] bmp = fixture("extra/img/bmp_rgb24.bmp");
        assertContains("truncated BMP", refused("cut.bmp", Arrays.copyOf(bmp, bmp.length / 2)));
    }

    @Test
    void corruptPngData() throws IOException {
        byte[] png = fixture("extra/img/png_rgb.png").clone();
        int idat = indexOf(png, "IDAT");
        for (int i = idat + 10; i < idat + 60; i++) png[i] ^= 0x5A;
        assertContains("corrupt PNG", refused("corrupt.png", png));
    }

    @Test
    void zeroSizeImages() throws IOException {
        assertContains("has no pixels", refused("empty.png", png(0, 10)));
        byte[] jpeg = fixture("extra/img/jpeg_422.jpg").clone();
        int sof = indexOf(jpeg, new byte[] {(byte) 0xFF, (byte) 0xC0});
        jpeg[sof + 5] = 0;
        jpeg[sof + 6] = 0; // height 0: the number of lines would come in a DNL marker, which Pillow cannot read
        assertContains("has no pixels", refused("zero.jpg", jpeg));
    }

    @Test
    void emptyUnknownAndMissingFiles() throws IOException {
        assertContains("the file is empty", refused("empty.jpg", new byte[0]));
        assertContains("not an image", refused("notes.jpg", "just some text".getBytes(StandardCharsets.US_ASCII)));
        Path missing = dir.resolve("missing.png");
        BadInputException e = assertThrows(BadInputException.class, () -> ImageLoader.load(missing));
        assertContains("no such file", e.getMessage());
        assertEquals(missing, e.file());
    }

    @Test
    void unsupportedFormatsAreNamed() throws IOException {
        byte[] webp = "RIFF\0\0\0\0WEBPVP8 \0\0\0\0".getBytes(StandardCharsets.ISO_8859_1);
        assertContains("unsupported image format WebP", refused("photo.jpg", webp));
        assertContains("unsupported image format TIFF", refused("scan.tif", "II*\0\u0008\0\0\0".getBytes(StandardCharsets.ISO_8859_1)));
        assertContains("unsupported image format HEIF", refused("phone.heic",
                "\0\0\0\u0018ftypheic\0\0\0\0".getBytes(StandardCharsets.ISO_8859_1)));
        byte[] arithmetic = fixture("extra/img/jpeg_422.jpg").clone();
        arithmetic[indexOf(arithmetic, new byte[] {(byte) 0xFF, (byte) 0xC0}) + 1] = (byte) 0xC9;
        assertContains("arithmetic coding", refused("arith.jpg", arithmetic));
    }

    /** The size comes from the header: 400 million pixels are refused without decoding (or even having) any. */
    @Test
    void decompressionBombsAreRefusedBeforeDecoding() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(5), () -> {
            assertContains("20000 x 20000 = 400,000,000 pixels is above the limit of 89,478,485", refused("bomb.png", png(20000, 20000)));
            byte[] jpeg = fixture("extra/img/jpeg_422.jpg").clone();
            int sof = indexOf(jpeg, new byte[] {(byte) 0xFF, (byte) 0xC0});
            jpeg[sof + 5] = jpeg[sof + 6] = jpeg[sof + 7] = jpeg[sof + 8] = (byte) 0xFF;
            assertContains("65535 x 65535", refused("bomb.jpg", jpeg));
            byte[] gif = fixture("extra/img/gif_pal.gif").clone();
            gif[6] = gif[7] = gif[8] = gif[9] = (byte) 0xFF;
            assertContains("above the limit", refused("bomb.gif", gif));
        });
    }

    @Test
    void thePixelLimitIsConfigurable() throws IOException {
        byte[] png = fixture("images/rgb_100x80.png");
        assertContains("100 x 80 = 8,000 pixels is above the limit of 7,999", refused("small.png", png, 7_999));
        assertEquals(100, ImageLoader.load(png, false, 8_000).width());
    }

    /** The JDK's reader rejects an ICC profile with a bad chunk sequence number; TwelveMonkeys (and Pillow) ignore it. */
    @Test
    void aBrokenIccProfileDoesNotStopDecoding() {
        byte[] good = fixture("images/icc_linear.jpg"), broken = good.clone();
        int icc = indexOf(broken, "ICC_PROFILE");
        broken[icc + 12] = 2; // chunk 2 of 1
        assertEquals("", ImageFixtures.compare(ImageLoader.load(good, false, ImageLoader.DEFAULT_MAX_PIXELS).rgb(),
                ImageLoader.load(broken, false, ImageLoader.DEFAULT_MAX_PIXELS)));
    }

    @Test
    void bytesAndStreamsWork() throws IOException {
        byte[] png = fixture("images/rgb_100x80.png");
        DecodedImage fromBytes = ImageLoader.load(png, true, ImageLoader.DEFAULT_MAX_PIXELS);
        try (var in = new java.io.ByteArrayInputStream(png)) {
            assertEquals("", ImageFixtures.compare(fromBytes.rgb(), ImageLoader.load(in, true, ImageLoader.DEFAULT_MAX_PIXELS)));
        }
        BadInputException e = assertThrows(BadInputException.class,
                () -> ImageLoader.load(Arrays.copyOf(png, 100), true, ImageLoader.DEFAULT_MAX_PIXELS));
        assertContains("truncated PNG", e.getMessage());
    }

    /** A PNG signature and IHDR for an 8-bit RGB image of the given size, and no image data at all. */
    private static byte[] png(int width, int height) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13});
        byte[] ihdr = {'I', 'H', 'D', 'R', (byte) (width >>> 24), (byte) (width >>> 16), (byte) (width >>> 8), (byte) width,
                (byte) (height >>> 24), (byte) (height >>> 16), (byte) (height >>> 8), (byte) height, 8, 2, 0, 0, 0};
        out.writeBytes(ihdr);
        CRC32 crc = new CRC32();
        crc.update(ihdr);
        long c = crc.getValue();
        out.writeBytes(new byte[] {(byte) (c >>> 24), (byte) (c >>> 16), (byte) (c >>> 8), (byte) c});
        return out.toByteArray();
    }

    private static int indexOf(byte[] data, String ascii) {
        return indexOf(data, ascii.getBytes(StandardCharsets.ISO_8859_1));
    }

    private static int indexOf(byte[] data, byte[] pattern) {
        outer:
        for (int i = 0; i + pattern.length <= data.length; i++) {
            for (int j = 0; j < pattern.length; j++) {
                if (data[i + j] != pattern[j]) continue outer;
            }
            return i;
        }
        throw new AssertionError("pattern not found");
    }

    private BadInputException refusedPath(Path file, long maxPixels) {
        BadInputException e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(BadInputException.class, () -> ImageLoader.load(file, false, maxPixels)));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        return e;
    }

    @Test
    void aFileLargerThanAnyImageWithinThePixelLimitIsRefusedBeforeItIsRead() throws IOException {
        Path huge = dir.resolve("huge.png");
        try (RandomAccessFile sparse = new RandomAccessFile(huge.toFile(), "rw")) {
            sparse.setLength(2L << 30);   // 2 GiB, more than one Java array holds
        }
        assertContains("the file has " + (2L << 30) + " bytes, more than the " + ImageLoader.maxBytes(ImageLoader.DEFAULT_MAX_PIXELS),
                refusedPath(huge, ImageLoader.DEFAULT_MAX_PIXELS).getMessage());

        Path merlion = Files.copy(ImageFixtures.imagesPil().resolve("images/rgb_100x80.png"), dir.resolve("small.png"));
        long fewPixels = 10;
        assertTrue(Files.size(merlion) > ImageLoader.maxBytes(fewPixels) - (64L << 20), "the bound follows the pixel limit");
        assertEquals(ImageLoader.maxBytes(Long.MAX_VALUE), Integer.MAX_VALUE - 8, "and never passes an array's size");
    }

    @Test
    void pipesDevicesAndFoldersAreRefusedWithoutBlocking() throws Exception {
        Path fifo = dir.resolve("fifo.png");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        assertContains("is not a regular file", refusedPath(fifo, ImageLoader.DEFAULT_MAX_PIXELS).getMessage());
        assertContains("is not a regular file", refusedPath(Path.of("/dev/zero"), ImageLoader.DEFAULT_MAX_PIXELS).getMessage());
        assertContains("is a folder", refusedPath(Files.createDirectory(dir.resolve("album.jpg")),
                ImageLoader.DEFAULT_MAX_PIXELS).getMessage());
    }
}
