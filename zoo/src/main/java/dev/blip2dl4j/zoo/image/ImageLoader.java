package dev.blip2dl4j.zoo.image;

import dev.blip2dl4j.BadInputException;

import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * Reads an image file into the RGB bytes that {@code Image.open(f).convert("RGB")} gives in Pillow,
 * optionally after {@code ImageOps.exif_transpose} as transformers' {@code load_image} does. The
 * format comes from the file's first bytes; PNG, JPEG, GIF and BMP are decoded, anything else is
 * refused by name. The size is read from the header and checked against a pixel limit before any
 * pixel is decoded, so a small file claiming a huge image costs nothing. A file that ends early is an
 * error, as in Pillow, never a partly grey image.
 */
public final class ImageLoader {
    /** Pillow's {@code Image.MAX_IMAGE_PIXELS}: 1024 * 1024 * 1024 // 4 // 3. */
    public static final long DEFAULT_MAX_PIXELS = 89_478_485L;

    private ImageLoader() {
    }

    /** With EXIF orientation applied and Pillow's pixel limit. */
    public static DecodedImage load(Path file) {
        return load(file, true, DEFAULT_MAX_PIXELS);
    }

    /**
     * @param exifTranspose turn the image upright by its EXIF orientation tag (transformers'
     *                      {@code load_image}); false gives the stored raster ({@code Image.open} alone)
     * @param maxPixels     refuse images with more pixels than this, before decoding them; and files larger
     *                      than {@link #maxBytes} of it, before reading them
     */
    public static DecodedImage load(Path file, boolean exifTranspose, long maxPixels) {
        long maxBytes = maxBytes(maxPixels);
        byte[] data;
        try {
            // a pipe or a device would block or never end, and a folder cannot be read: refused before opening
            BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
            if (attributes.isDirectory()) throw bad(file, "is a folder, not an image file");
            if (!attributes.isRegularFile()) {
                throw bad(file, "is not a regular file (a pipe, a device or a socket): images are read from files");
            }
            if (attributes.size() > maxBytes) throw tooLarge(file, attributes.size(), maxBytes, maxPixels);
            try (InputStream in = Files.newInputStream(file)) {
                data = in.readNBytes((int) maxBytes + 1);   // the file may have grown since
            }
        } catch (NoSuchFileException e) {
            throw new BadInputException(file, "no such file");
        } catch (IOException e) {
            throw new BadInputException(file, "cannot read the file: " + e.getMessage(), e);
        }
        if (data.length > maxBytes) throw tooLarge(file, data.length, maxBytes, maxPixels);
        return decode(data, file, exifTranspose, maxPixels);
    }

    /**
     * The largest image file read for a pixel limit: no format we decode stores a pixel in more than 8 bytes
     * (16-bit RGBA PNG, as good as uncompressed), and 64 MiB more allows for metadata; never beyond what one
     * Java array holds, so that a 2 GiB file is an error for that file, not an OutOfMemoryError for the run.
     */
    public static long maxBytes(long maxPixels) {
        long array = Integer.MAX_VALUE - 8;
        return maxPixels >= array / 8 ? array : Math.min(8 * maxPixels + (64L << 20), array);
    }

    private static BadInputException tooLarge(Path file, long bytes, long maxBytes, long maxPixels) {
        return bad(file, "the file has " + bytes + " bytes, more than the " + maxBytes + " an image of at most "
                + maxPixels + " pixels needs (the pixel limit, --max-pixels, raises both)");
    }

    public static DecodedImage load(byte[] data, boolean exifTranspose, long maxPixels) {
        return decode(data, null, exifTranspose, maxPixels);
    }

    /** Reads the stream to its end; the caller closes it. */
    public static DecodedImage load(InputStream in, boolean exifTranspose, long maxPixels) {
        try {
            return decode(in.readAllBytes(), null, exifTranspose, maxPixels);
        } catch (IOException e) {
            throw new BadInputException(null, "cannot read the image stream: " + e.getMessage(), e);
        }
    }

    private static DecodedImage decode(byte[] data, Path file, boolean exifTranspose, long maxPixels) {
        if (data.length == 0) throw bad(file, "the file is empty");
        byte[] head = Arrays.copyOf(data, Math.min(data.length, ImageFormat.SNIFF_BYTES));
        ImageFormat format = ImageFormat.detect(head);
        if (format == ImageFormat.UNKNOWN) {
            throw bad(file, "not an image in any format we know (it starts with bytes "
                    + HexFormat.ofDelimiter(" ").formatHex(head, 0, Math.min(head.length, 8)) + ")");
        }
        if (!format.decodable()) {
            throw bad(file, "unsupported image format " + format.displayName()
                    + " (PNG, JPEG, GIF and BMP are supported; convert the image to one of them)");
        }
        Decoded decoded = switch (format) {
            case PNG -> png(data, file, maxPixels);
            case JPEG -> jpeg(data, file, maxPixels);
            case GIF -> gif(data, file, maxPixels);
            case BMP -> bmp(data, file, maxPixels);
            default -> throw new IllegalStateException(format.toString());
        };
        return exifTranspose ? ExifOrientation.apply(decoded.image, ExifOrientation.read(decoded.exif)) : decoded.image;
    }

    /** The image and the EXIF block its file carried, if any. */
    private record Decoded(DecodedImage image, byte[] exif) {
    }

    private static Decoded png(byte[] data, Path file, long maxPixels) {
        PngHeader header = PngHeader.parse(data);
        if (header == null) throw bad(file, "truncated PNG: the file ends inside its header");
        checkSize(file, ImageFormat.PNG, header.width(), header.height(), maxPixels);
        BufferedImage image = read(data, file, ImageFormat.PNG, reader -> reader.read(0));
        boolean clipGray16 = header.colorType() == PngHeader.GRAY && header.bitDepth() == 16;
        return new Decoded(new DecodedImage(image.getWidth(), image.getHeight(),
                PillowConvert.toRgb(image, clipGray16), header.pillowMode()), header.exif());
    }

    private static Decoded jpeg(byte[] data, Path file, long maxPixels) {
        JpegHeader header = JpegHeader.parse(data);
        if (header == null) throw bad(file, "truncated or corrupt JPEG: no frame header before the image data");
        if (header.arithmetic()) {
            throw bad(file, "unsupported JPEG: arithmetic coding (the JDK's JPEG decoder has no arithmetic decoder)");
        }
        if (header.lossless()) throw bad(file, "unsupported JPEG: lossless (Pillow cannot open it either)");
        JpegHeader.ColorSpace space = header.colorSpace();
        if (space == null) {
            throw bad(file, "unsupported JPEG with " + header.componentIds().length + " components (Pillow reads 1, 3 or 4)");
        }
        checkSize(file, ImageFormat.JPEG, header.width(), header.height(), maxPixels);
        Raster raster = read(data, file, ImageFormat.JPEG, reader -> reader.readRaster(0, null));
        return new Decoded(JpegColor.toRgb(raster, space), header.exif());
    }

    private static Decoded gif(byte[] data, Path file, long maxPixels) {
        GifHeader header = GifHeader.parse(data);
        if (header == null) throw bad(file, "truncated or corrupt GIF: no image in the file");
        checkSize(file, ImageFormat.GIF, header.width(), header.height(), maxPixels);
        BufferedImage frame = read(data, file, ImageFormat.GIF, reader -> reader.read(0));
        if (!(frame.getColorModel() instanceof IndexColorModel palette)) {
            throw new IllegalStateException("GIF frame without a palette");
        }
        int w = header.width(), h = header.height();
        byte[] framePixels = PillowConvert.toRgb(frame, false);
        int fill = header.transparentIndex() != GifHeader.NO_TRANSPARENCY ? header.transparentIndex() : 0;
        byte[] out = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++) {
            out[i * 3] = (byte) palette.getRed(fill);
            out[i * 3 + 1] = (byte) palette.getGreen(fill);
            out[i * 3 + 2] = (byte) palette.getBlue(fill);
        }
        int fw = frame.getWidth();
        for (int y = 0; y < frame.getHeight(); y++) {
            System.arraycopy(framePixels, y * fw * 3, out, ((header.top() + y) * w + header.left()) * 3, fw * 3);
        }
        return new Decoded(new DecodedImage(w, h, out, "P"), null);
    }

    private static Decoded bmp(byte[] data, Path file, long maxPixels) {
        BufferedImage image = read(data, file, ImageFormat.BMP, reader -> {
            checkSize(file, ImageFormat.BMP, reader.getWidth(0), reader.getHeight(0), maxPixels);
            return reader.read(0);
        });
        String mode = image.getColorModel() instanceof IndexColorModel ? "P"
                : image.getColorModel().getNumColorComponents() == 1 ? "L"
                : image.getColorModel().hasAlpha() ? "RGBA" : "RGB";
        return new Decoded(new DecodedImage(image.getWidth(), image.getHeight(), PillowConvert.toRgb(image, false), mode), null);
    }

    private static void checkSize(Path file, ImageFormat format, long width, long height, long maxPixels) {
        if (width <= 0 || height <= 0) {
            throw bad(file, format.displayName() + " image of " + width + " x " + height + " pixels: it has no pixels");
        }
        if (width * height > maxPixels) {
            throw bad(file, String.format(Locale.ROOT, "%s image of %d x %d = %,d pixels is above the limit of %,d pixels"
                    + " (a decompression bomb? raise the limit only for files you trust)",
                    format.displayName(), width, height, width * height, maxPixels));
        }
    }

    @FunctionalInterface
    private interface ReaderCall<T> {
        T apply(ImageReader reader) throws IOException;
    }

    /**
     * Runs {@code call} on the ImageIO reader for {@code format} and turns every way a reader fails
     * (IIOException, and the runtime exceptions readers throw on corrupt data) into a BadInputException.
     * A reader that hit the end of the data early only warns and pads the image: that is an error here.
     */
    private static <T> T read(byte[] data, Path file, ImageFormat format, ReaderCall<T> call) {
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format.name().toLowerCase(Locale.ROOT));
        if (!readers.hasNext()) throw new IllegalStateException("no ImageIO reader for " + format);
        ImageReader reader = readers.next();
        List<String> warnings = new ArrayList<>();
        reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(data))) {
            reader.setInput(in, true, true);
            T result = call.apply(reader);
            for (String warning : warnings) {
                if (TruncationWarnings.meansTruncated(warning)) {
                    throw bad(file, "truncated " + format.displayName() + ": the file ends before the image data does ("
                            + warning + ")");
                }
            }
            return result;
        } catch (BadInputException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            if (endedEarly(e)) {
                throw bad(file, "truncated " + format.displayName() + ": the file ends before the image data does ("
                        + causes(e) + ")", e);
            }
            if (e instanceof IIOException) {
                throw bad(file, "corrupt " + format.displayName() + ": " + causes(e), e);
            }
            throw bad(file, "cannot decode this " + format.displayName() + ": " + causes(e), e);
        } finally {
            reader.dispose();
        }
    }

    private static boolean endedEarly(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof EOFException) return true;
        }
        return false;
    }

    /** The exception's message and its causes' ("Error reading PNG image data (EOFException: ...)"). */
    private static String causes(Throwable e) {
        StringBuilder text = new StringBuilder(describe(e));
        for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
            text.append(" (").append(describe(c)).append(')');
        }
        return text.toString();
    }

    private static String describe(Throwable e) {
        String name = e.getClass().getSimpleName();
        return e.getMessage() == null ? name : e instanceof IOException ? e.getMessage() : name + ": " + e.getMessage();
    }

    private static BadInputException bad(Path file, String problem) {
        return new BadInputException(file, problem);
    }

    private static BadInputException bad(Path file, String problem, Throwable cause) {
        return new BadInputException(file, problem, cause);
    }
}
