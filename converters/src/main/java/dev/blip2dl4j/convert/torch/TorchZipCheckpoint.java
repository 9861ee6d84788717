package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.tensor.ShardIndex;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.convert.tensor.StorageView;
import dev.blip2dl4j.convert.tensor.TensorSource;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipFile;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;

/**
 * A checkpoint written by {@code torch.save} since PyTorch 1.6: Hugging Face's {@code pytorch_model.bin},
 * LAVIS's {@code .pth}. It is a zip archive with one top folder holding {@code data.pkl}, the pickled
 * object, and {@code data/<key>}, one uncompressed entry per storage. The pickle is read with
 * {@link SafeUnpickler}, which runs no code; the tensors are views into the storage entries, read in
 * place when asked for.
 *
 * <p>The state dict is the pickled dict itself, or its {@code "model"} or {@code "state_dict"} entry
 * (LAVIS saves {@code {"model": state_dict, "optimizer": ..., "epoch": ...}}). Its non-tensor values
 * are skipped; everything else in the file is parsed and ignored.
 */
public final class TorchZipCheckpoint implements TensorSource {

    /** Far above any state dict's pickle (a few hundred bytes per tensor), far below trouble. */
    private static final long MAX_PICKLE_BYTES = 128L << 20;
    private static final List<String> WRAPPER_KEYS = List.of("model", "state_dict");

    private final Path file;
    private final List<SourceTensor> tensors;

    private TorchZipCheckpoint(Path file, List<SourceTensor> tensors) {
        this.file = file;
        this.tensors = tensors;
    }

    /** Reads the checkpoint's pickle and locates every tensor of its state dict; reads no tensor data. */
    public static TorchZipCheckpoint open(Path file) {
        checkIsZip(file);
        try (ZipFile zip = ZipFile.builder().setPath(file).get()) {
            String folder = topFolder(file, zip);
            checkLittleEndian(file, zip, folder);
            ZipArchiveEntry pickleEntry = zip.getEntry(folder + "data.pkl");
            Object top = SafeUnpickler.load(file, pickleEntry.getName(), readPickle(file, zip, pickleEntry));
            List<SourceTensor> tensors = new ArrayList<>();
            for (Map.Entry<?, ?> entry : stateDict(file, top).entrySet()) {
                if (entry.getValue() instanceof TorchTensor tensor) {
                    if (!(entry.getKey() instanceof String name)) {
                        throw new BadInputException(file, "the state dict has a tensor under "
                                + SafeUnpickler.describe(entry.getKey()) + " key; tensor names are strings");
                    }
                    tensors.add(sourceTensor(file, zip, folder, name, tensor));
                }
            }
            if (tensors.isEmpty()) {
                throw new BadInputException(file, "holds no tensors: neither the pickled dict nor its 'model'"
                        + " or 'state_dict' entry is a state dict");
            }
            tensors.sort(Comparator.comparingLong(SourceTensor::dataOffset).thenComparing(SourceTensor::name));
            return new TorchZipCheckpoint(file, Collections.unmodifiableList(tensors));
        } catch (IOException e) {
            throw new BadInputException(file, "starts like a zip archive but cannot be read as one ("
                    + e.getMessage() + "): the file is truncated or corrupt", e);
        }
    }

    /**
     * A checkpoint saved in shards by {@code save_pretrained}: {@code pytorch_model.bin.index.json}
     * names the shard of every tensor.
     */
    public static TensorSource openSharded(Path indexFile) {
        return ShardIndex.open(indexFile, TorchZipCheckpoint::open);
    }

    @Override
    public String description() {
        return "PyTorch checkpoint " + file.getFileName();
    }

    @Override
    public List<Path> files() {
        return List.of(file);
    }

    /** The state dict's tensors in the order of their data in the file; tied tensors share a storage. */
    @Override
    public List<SourceTensor> tensors() {
        return tensors;
    }

    /** Tells the formats that torch.load also reads, but we do not, from a plain bad file. */
    private static void checkIsZip(Path file) {
        byte[] head = new byte[4];
        int length;
        try (InputStream in = Files.newInputStream(file)) {
            length = in.readNBytes(head, 0, head.length);
        } catch (NoSuchFileException e) {
            throw new BadInputException(file, "no such file");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        if (length >= 2 && head[0] == 'P' && head[1] == 'K') {
            return;
        }
        // The legacy format is a sequence of pickles, the first a magic number in protocol 2 (0x80 0x02).
        if (length >= 1 && (head[0] & 0xff) == 0x80) {
            throw new BadInputException(file, "is in PyTorch's legacy serialization format (before 1.6, or"
                    + " saved with _use_new_zipfile_serialization=False), which we do not read; re-save it with"
                    + " PyTorch 1.6 or newer: torch.save(torch.load(path), new_path)");
        }
        throw new BadInputException(file, "is not a PyTorch checkpoint: torch.save writes a zip archive, and"
                + " this file does not start like one");
    }

    /** The archive's one top folder (named after the file torch.save wrote), with its slash. */
    private static String topFolder(Path file, ZipFile zip) {
        List<String> folders = new ArrayList<>();
        for (ZipArchiveEntry entry : Collections.list(zip.getEntries())) {
            String name = entry.getName();
            int slash = name.indexOf('/');
            if (slash > 0 && name.substring(slash + 1).equals("data.pkl")) {
                folders.add(name.substring(0, slash + 1));
            }
        }
        if (folders.size() != 1) {
            throw new BadInputException(file, "is a zip archive but not a PyTorch checkpoint: it should hold"
                    + " exactly one <folder>/data.pkl, and holds " + folders.size());
        }
        return folders.get(0);
    }

    /** Storages are in the byte order of the machine that saved them; we read only little-endian ones. */
    private static void checkLittleEndian(Path file, ZipFile zip, String folder) throws IOException {
        ZipArchiveEntry entry = zip.getEntry(folder + "byteorder");
        if (entry == null) {
            return; // written before PyTorch 1.12: always little-endian in practice
        }
        String order;
        try (InputStream in = zip.getInputStream(entry)) {
            order = new String(in.readNBytes(16), StandardCharsets.US_ASCII).strip();
        }
        if (!order.equals("little")) {
            throw new BadInputException(file, "was saved on a machine with '" + order + "' byte order; only"
                    + " little-endian checkpoints are read: re-save it on a little-endian machine");
        }
    }

    private static byte[] readPickle(Path file, ZipFile zip, ZipArchiveEntry entry) throws IOException {
        if (entry.getSize() > MAX_PICKLE_BYTES) {
            throw new BadInputException(file, "its pickle " + entry.getName() + " is " + entry.getSize()
                    + " bytes, more than the " + MAX_PICKLE_BYTES + " a state dict needs");
        }
        try (InputStream in = zip.getInputStream(entry)) {
            // readNBytes grows its buffer as bytes arrive, so a false size allocates nothing extra.
            return in.readNBytes((int) MAX_PICKLE_BYTES);
        }
    }

    /** The dict of tensors: the top-level dict, or its "model" or "state_dict" entry when that is a dict. */
    private static Map<?, ?> stateDict(Path file, Object top) {
        if (!(top instanceof Map<?, ?> dict)) {
            throw new BadInputException(file, "holds " + SafeUnpickler.describe(top) + ", not a state dict");
        }
        for (String key : WRAPPER_KEYS) {
            if (dict.get(key) instanceof Map<?, ?> inner) {
                return inner;
            }
        }
        return dict;
    }

    private static SourceTensor sourceTensor(Path file, ZipFile zip, String folder, String name, TorchTensor tensor) {
        TorchStorage storage = tensor.storage();
        String entryName = folder + "data/" + storage.key();
        ZipArchiveEntry entry = zip.getEntry(entryName);
        if (entry == null) {
            throw new BadInputException(file, "tensor '" + name + "' uses the storage " + entryName
                    + ", which the archive does not hold");
        }
        if (entry.getMethod() != ZipEntry.STORED) {
            throw new BadInputException(file, "the storage " + entryName + " is compressed; torch.save stores"
                    + " storages uncompressed so that they can be read in place: re-save the checkpoint with"
                    + " torch.save instead of re-zipping it");
        }
        long storageBytes;
        try {
            storageBytes = Math.multiplyExact(storage.numel(), storage.dtype().size());
        } catch (ArithmeticException e) {
            throw new BadInputException(file, "the storage " + entryName + " of tensor '" + name + "' declares "
                    + storage.numel() + " " + storage.dtype() + " elements, too large to address: their bytes"
                    + " overflow 64 bits");
        }
        if (entry.getSize() < storageBytes) {
            throw new BadInputException(file, "the storage " + entryName + " of tensor '" + name + "' holds "
                    + entry.getSize() + " bytes, less than the " + storage.numel() + " " + storage.dtype()
                    + " elements (" + storageBytes + " bytes) that the pickle declares");
        }
        // the view's sizes, strides and offset are checked against the storage here, overflow included
        StorageView view = new StorageView(file, entry.getDataOffset(), storageBytes, tensor.storageOffset(),
                tensor.stride());
        return new SourceTensor(name, storage.dtype(), tensor.size(), view);
    }
}
