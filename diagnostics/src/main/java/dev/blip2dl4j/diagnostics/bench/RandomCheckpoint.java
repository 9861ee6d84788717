package dev.blip2dl4j.diagnostics.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.Version;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.convert.ArtifactFiles;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.Int8Quantization;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import dev.blip2dl4j.zoo.hub.RemoteFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.security.MessageDigest;

/**
 * A random checkpoint with a model's exact names, shapes and sharding, in float32 or, as many uploads are, in
 * float16 or bfloat16 (the float32 values rounded to nearest even; the shards cut where the float32 checkpoint's are,
 * so each file is half its size), in the Hugging Face layout: safetensors shards cut greedily in state_dict order as {@code save_pretrained} cuts them (10 GB by
 * default), {@code model.safetensors.index.json}, {@code config.json} and, where given, the tokenizer's files.
 * Real weights cannot be downloaded everywhere; full-size benchmarks need only the sizes.
 *
 * <p>Values are N(0, 0.02), each tensor from its own generator seeded by the seed and the tensor's name (a tied
 * copy by its target's, so that it equals it, as conversion checks): any tensor can be made again alone, and a
 * plan written twice with one seed gives the same bytes. Tensors are generated into one buffer and written
 * through it: memory stays at the buffer, whatever the model's size.
 */
public final class RandomCheckpoint {
    /** {@code save_pretrained}'s default {@code max_shard_size="10GB"}, in decimal bytes as transformers reads it. */
    public static final long MAX_SHARD_BYTES = 10_000_000_000L;
    public static final double STD = 0.02;
    public static final String INDEX = "model.safetensors.index.json";
    /** The hub's pages round sizes to three digits: a recorded size matches within this share. */
    private static final double ROUNDING = 0.01;
    private static final Pattern SHARD = Pattern.compile("(?:model|pytorch_model)-(\\d{5})-of-(\\d{5})\\.(?:safetensors|bin)");
    private static final int BUFFER_FLOATS = 8 << 20;

    private RandomCheckpoint() {
    }

    /**
     * Which of the Hugging Face repositories' two layouts to follow: both cut in state_dict order, but those
     * converted in 2023 from PyTorch's {@code .bin} files were cut counting the tied copies that state_dict lists.
     */
    public enum Layout {
        /** As {@code save_pretrained} writes safetensors: the parameters, no tied copies. */
        SAVED,
        /**
         * As the 2023 conversions from {@code .bin}: the tied copies counted where state_dict lists them; OPT's
         * output projection stored (last), T5's per-stack token tables left out of the files (first in each stack).
         */
        FROM_BIN
    }

    /**
     * One tensor of the checkpoint.
     *
     * @param valuesOf the name whose generator makes its values: its own, or for a tied copy its target's
     * @param stored   whether the files hold it; a tied copy may only count where the shards were cut
     */
    public record Tensor(String name, long[] shape, String valuesOf, boolean stored) {
        public long bytes() {
            long n = Float.BYTES;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }
    }

    /** One file, its stored tensors, and the tied copies counted in it but not stored. */
    public record Shard(String file, List<Tensor> tensors) {
        /** The bytes of tensor data the file holds. */
        public long bytes() {
            return stored().mapToLong(Tensor::bytes).sum();
        }

        public Stream<Tensor> stored() {
            return tensors.stream().filter(Tensor::stored);
        }
    }

    public record Plan(Blip2Config config, Layout layout, List<Shard> shards) {
        public long bytes() {
            return shards.stream().mapToLong(Shard::bytes).sum();
        }

        public int tensorCount() {
            return (int) shards.stream().flatMap(Shard::stored).count();
        }
    }

    /**
     * The checkpoint of {@code config} in {@code layout}: every parameter of its layout in state_dict order, cut
     * greedily: a tensor that would take a shard past {@code maxShardBytes} starts the next one.
     */
    public static Plan plan(Blip2Config config, Layout layout, long maxShardBytes) {
        if (maxShardBytes <= 0) {
            throw new BadInputException("the largest shard must be a positive number of bytes, not " + maxShardBytes);
        }
        ParameterLayout parameters = ParameterLayout.of(config);
        List<Tensor> tensors = new ArrayList<>();
        for (ParamSpec p : parameters.parameters()) {
            tensors.add(new Tensor(p.name(), p.shape(), p.name(), true));
        }
        if (layout == Layout.FROM_BIN) {
            parameters.tiedAliases().forEach((alias, target) -> {
                Tensor copy = new Tensor(alias, parameters.get(target).shape(), target, config.useDecoderOnlyLanguageModel());
                tensors.add(positionOf(alias, tensors), copy);
            });
        }
        List<List<Tensor>> groups = new ArrayList<>();
        long size = 0;
        for (Tensor t : tensors) {
            if (groups.isEmpty() || (!groups.get(groups.size() - 1).isEmpty() && size + t.bytes() > maxShardBytes)) {
                groups.add(new ArrayList<>());
                size = 0;
            }
            groups.get(groups.size() - 1).add(t);
            size += t.bytes();
        }
        List<Shard> shards = new ArrayList<>();
        for (int i = 0; i < groups.size(); i++) {
            String file = groups.size() == 1 ? "model.safetensors"
                    : String.format("model-%05d-of-%05d.safetensors", i + 1, groups.size());
            shards.add(new Shard(file, List.copyOf(groups.get(i))));
        }
        return new Plan(config, layout, List.copyOf(shards));
    }

    /**
     * Where state_dict lists a tied copy: a module's table before the rest of the module (T5's stacks), or, for a
     * submodule of the language model itself (an output projection), after everything, as it comes last.
     */
    private static int positionOf(String alias, List<Tensor> tensors) {
        int cut = alias.lastIndexOf('.', alias.lastIndexOf('.') - 1);
        String holder = alias.substring(0, cut + 1);
        int firstOfHolder = -1;
        int firstOfLanguageModel = -1;
        for (int i = tensors.size() - 1; i >= 0; i--) {
            String name = tensors.get(i).name();
            firstOfHolder = name.startsWith(holder) ? i : firstOfHolder;
            firstOfLanguageModel = Blip2Parameters.inLanguageModel(name) ? i : firstOfLanguageModel;
        }
        return firstOfHolder < 0 || firstOfHolder == firstOfLanguageModel ? tensors.size() : firstOfHolder;
    }

    /**
     * The checkpoint of a catalogue model: its architecture's config, cut at 10 GB, in the layout whose shards
     * match those the catalogue records (their sizes tell), else as {@code save_pretrained} writes it.
     */
    public static Plan like(CatalogueEntry entry) {
        if (entry.architecture() == null) {
            throw new BadInputException("the catalogue entry " + entry.name() + " gives only a parameter count, no "
                    + "architecture: its names and shapes are unknown; give its config.json with --config instead");
        }
        Blip2Config config = Blip2Config.knownLavisType(entry.architecture());
        Plan saved = plan(config, Layout.SAVED, MAX_SHARD_BYTES);
        Plan fromBin = plan(config, Layout.FROM_BIN, MAX_SHARD_BYTES);
        return mismatch(saved, entry).isPresent() && mismatch(fromBin, entry).isEmpty() ? fromBin : saved;
    }

    /**
     * How the plan differs from the shards the catalogue records for the entry (their number, and each size the
     * hub shows, within its rounding); empty when they agree or when the entry records no shards of its own.
     */
    public static Optional<String> mismatch(Plan plan, CatalogueEntry entry) {
        List<RemoteFile> recorded = recordedShards(entry);
        if (recorded.isEmpty()) {
            return Optional.empty();
        }
        if (recorded.size() != plan.shards().size()) {
            return Optional.of(entry.name() + " has " + recorded.size() + " shards, the plan " + plan.shards().size());
        }
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < recorded.size(); i++) {
            long expected = recorded.get(i).displaySize();
            long planned = plan.shards().get(i).bytes();
            if (expected > 0 && Math.abs(planned - expected) > ROUNDING * expected) {
                problems.add(recorded.get(i).path() + ": " + expected + " bytes recorded, " + planned + " planned");
            }
        }
        return problems.isEmpty() ? Optional.empty() : Optional.of(String.join("; ", problems));
    }

    /** The entry's weight shards as its own source records them (a LAVIS entry's language-model folder is not it). */
    private static List<RemoteFile> recordedShards(CatalogueEntry entry) {
        if (!entry.sources().get(0).isRepo()) {
            return List.of();
        }
        List<RemoteFile> shards = new ArrayList<>();
        for (RemoteFile f : entry.sources().get(0).files()) {
            Matcher m = SHARD.matcher(f.path());
            if (m.matches() || f.path().equals("model.safetensors") || f.path().equals("pytorch_model.bin")) {
                shards.add(f);
            }
        }
        shards.sort(Comparator.comparing(RemoteFile::path));
        return shards;
    }

    /** What a written checkpoint holds. */
    public record Result(Path dir, long bytes, List<Path> files) {
    }

    /**
     * Writes the plan into {@code dir} (created if absent): every file through {@link OutputFile}'s policy (never
     * over an existing file unless {@code overwrite}, renamed into place when complete), the shards, the index
     * when there are several, config.json, and the files of {@code tokenizer} (a folder) if given.
     *
     * @param dtype   F32, F16 or BF16: the type of every tensor
     * @param onShard told each shard's file name as it is complete
     */
    public static Result write(Plan plan, Path dir, long seed, DType dtype, Path tokenizer, boolean overwrite,
                               Consumer<String> onShard) {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new BadInputException("a random checkpoint is float32, float16 or bfloat16, not " + dtype.userName());
        }
        List<Path> tokenizerFiles = tokenizer == null ? List.of() : listFiles(tokenizer);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new BadInputException(dir, "cannot be created: " + e.getMessage(), e);
        }
        Map<Path, OutputFile> outputs = new TreeMap<>();
        plan.shards().forEach(s -> outputs.put(dir.resolve(s.file()), null));
        if (plan.shards().size() > 1) {
            outputs.put(dir.resolve(INDEX), null);
        }
        outputs.put(dir.resolve("config.json"), null);
        tokenizerFiles.forEach(f -> outputs.put(dir.resolve(f.getFileName()), null));
        // every output is checked before the first byte is written: a refusal leaves nothing half-made
        List<Path> inputs = tokenizer == null ? List.of() : List.of(tokenizer);
        outputs.replaceAll((path, unused) -> OutputFile.check(path, inputs, overwrite));

        List<Path> written = new ArrayList<>();
        ByteBuffer buffer = ByteBuffer.allocateDirect(BUFFER_FLOATS * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        Map<String, String> weightMap = new TreeMap<>();
        for (Shard shard : plan.shards()) {
            OutputFile out = outputs.get(dir.resolve(shard.file()));
            writeFile(out, channel -> writeShard(channel, shard, seed, dtype, buffer));
            shard.stored().forEach(t -> weightMap.put(t.name(), shard.file()));
            written.add(out.path());
            onShard.accept(shard.file());
        }
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        if (plan.shards().size() > 1) {
            ObjectNode index = json.createObjectNode();
            index.putObject("metadata").put("total_size", plan.bytes() / Float.BYTES * dtype.size());
            ObjectNode map = index.putObject("weight_map");
            weightMap.forEach(map::put);
            written.add(writeBytes(outputs.get(dir.resolve(INDEX)), (index.toPrettyString() + "\n").getBytes(StandardCharsets.UTF_8)));
        }
        written.add(writeBytes(outputs.get(dir.resolve("config.json")), huggingFaceConfig(plan.config())));
        for (Path f : tokenizerFiles) {
            written.add(writeBytes(outputs.get(dir.resolve(f.getFileName())), read(f)));
        }
        return new Result(dir, plan.bytes() / Float.BYTES * dtype.size(), written);
    }

    /**
     * Writes the plan's model straight into a {@code .b2z} artifact in the types {@code storage} gives each tensor,
     * with no checkpoint at all: the tensors converting {@link #write}'s float32 checkpoint of the same seed with that
     * policy stores, bit for bit (tested), where the checkpoint and the artifact would not fit on a disk together.
     * The small files are those {@code blip2 convert} takes from a checkpoint folder holding {@code tokenizer}'s files;
     * the manifest names no source files. Memory: one row of the widest matrix, a buffer and the scales.
     */
    public static Result writeArtifact(Plan plan, Path output, long seed, StoragePolicy storage, Path tokenizer,
                                       boolean overwrite) {
        OutputFile out = OutputFile.check(output, tokenizer == null ? List.of() : List.of(tokenizer), overwrite);
        Blip2Config config = Blip2Config.parse(new String(huggingFaceConfig(plan.config()), StandardCharsets.UTF_8), output);
        ArtifactFiles files = ArtifactFiles.fromFolder(Optional.ofNullable(tokenizer), config);
        ByteBuffer buffer = ByteBuffer.allocate(BUFFER_FLOATS * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        long bytes = 0;
        try (ArtifactWriter writer = ArtifactWriter.create(out)) {
            files.contents().forEach(writer::addFile);
            for (ParamSpec p : ParameterLayout.of(config).parameters()) {
                DType type = storage.dtype(p);
                bytes += storage.bytes(p);
                if (type == DType.I8) {
                    writeQuantized(writer, p, storage.blockSize(p.shape()), generator(seed, p.name()), buffer.array());
                } else {
                    writeFloats(writer, p, type, generator(seed, p.name()), buffer);
                }
            }
            List<String> notes = new ArrayList<>();
            notes.add("random values, N(0, " + STD + "), seed " + seed + ", written straight into the artifact "
                    + "(blip2 random-checkpoint): no source checkpoint");
            notes.add("stored: " + storage.describe());
            notes.addAll(files.notes());
            writer.commit(new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, config.kind().architecture(),
                    config.kind() == ModelKind.CONDITIONAL_GENERATION ? config.text().modelType() : null, Version.TEXT,
                    new Manifest.Source("random", files.sourceFiles()), storage.dtype().name(), List.of(), notes));
        }
        return new Result(output, bytes, List.of(output));
    }

    private static void writeFloats(ArtifactWriter writer, ParamSpec p, DType type, SplittableRandom random,
                                    ByteBuffer buffer) {
        ArtifactWriter.TensorOutput output = writer.beginTensor(p.name(), type, p.shape());
        MessageDigest digest = Sha256.newDigest();
        for (long left = p.numel(); left > 0; ) {
            int n = (int) Math.min(left, BUFFER_FLOATS);
            buffer.clear();
            for (int i = 0; i < n; i++) {
                put(buffer, type, (float) (random.nextGaussian() * STD));
            }
            output.write(buffer.array(), 0, buffer.position());
            digest.update(buffer.array(), 0, buffer.position());
            left -= n;
        }
        String hex = Sha256.hex(digest);
        output.finish(() -> hex);
    }

    /** Row by row, as conversion quantizes a matrix (Int8Quantization per row or block), into {@code staging}. */
    private static void writeQuantized(ArtifactWriter writer, ParamSpec p, int blockSize, SplittableRandom random,
                                       byte[] staging) {
        int rows = Math.toIntExact(p.shape()[0]);
        int columns = Math.toIntExact(p.shape()[1]);
        int block = blockSize == 0 ? columns : blockSize;
        int blocks = columns / block;
        ArtifactWriter.TensorOutput output = writer.beginQuantized(p.name(), p.shape(), blockSize);
        MessageDigest digest = Sha256.newDigest();
        float[] row = new float[columns];
        float[] scales = new float[rows * blocks];
        int staged = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < columns; c++) {
                row[c] = (float) (random.nextGaussian() * STD);
            }
            if (staged + columns > staging.length) {
                output.write(staging, 0, staged);
                digest.update(staging, 0, staged);
                staged = 0;
            }
            for (int b = 0; b < blocks; b++) {
                scales[r * blocks + b] = Int8Quantization.quantize(row, b * block, block, staging, staged + b * block);
            }
            staged += columns;
        }
        output.write(staging, 0, staged);
        digest.update(staging, 0, staged);
        String hex = Sha256.hex(digest);
        output.finish(() -> hex, scales);
    }

    private static void put(ByteBuffer buffer, DType type, float value) {
        switch (type) {
            case F16 -> buffer.putShort(FloatConversion.floatToHalf(value));
            case BF16 -> buffer.putShort(FloatConversion.floatToBfloat16(value));
            default -> buffer.putFloat(value);
        }
    }

    /**
     * The config as transformers writes it: ours for a LAVIS type, less what we add to it (the LAVIS facts and
     * what we could not verify), which the checkpoint of a Hugging Face repository does not hold.
     */
    private static byte[] huggingFaceConfig(Blip2Config config) {
        try {
            ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            ObjectNode tree = (ObjectNode) json.readTree(config.json());
            tree.remove("lavis");
            tree.remove("_unverified");
            return (tree.toPrettyString() + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Header (names sorted, as the safetensors library writes them) and then each tensor's bytes in that order. */
    private static void writeShard(FileChannel channel, Shard shard, long seed, DType dtype, ByteBuffer buffer)
            throws IOException {
        List<Tensor> sorted = shard.stored().sorted(Comparator.comparing(Tensor::name)).toList();
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Tensor t : sorted) {
            ObjectNode entry = header.putObject(t.name());
            entry.put("dtype", dtype.name());
            var shape = entry.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            long bytes = t.bytes() / Float.BYTES * dtype.size();
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] text = json.writeValueAsBytes(header);
        int padded = (text.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(text);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        writeFully(channel, head.flip());
        for (Tensor t : sorted) {
            SplittableRandom random = generator(seed, t.valuesOf());
            long left = t.bytes() / Float.BYTES;
            while (left > 0) {
                int n = (int) Math.min(left, BUFFER_FLOATS);
                buffer.clear();
                for (int i = 0; i < n; i++) {
                    put(buffer, dtype, (float) (random.nextGaussian() * STD));
                }
                buffer.flip();
                writeFully(channel, buffer);
                left -= n;
            }
        }
    }

    /** A tensor's own generator: the seed and the CRC-32 of the name, so that each can be made alone. */
    static SplittableRandom generator(long seed, String name) {
        CRC32 crc = new CRC32();
        crc.update(name.getBytes(StandardCharsets.UTF_8));
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + crc.getValue());
    }

    private interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }

    private static void writeFile(OutputFile out, ChannelWriter body) {
        Path partial = out.beginPartial();
        try {
            try (FileChannel channel = FileChannel.open(partial, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                body.write(channel);
            }
            out.commit(partial);
        } catch (IOException e) {
            out.abandon(partial);
            throw new UncheckedIOException("cannot write " + out.path(), e);
        } catch (RuntimeException e) {
            out.abandon(partial);
            throw e;
        }
    }

    private static Path writeBytes(OutputFile out, byte[] bytes) {
        writeFile(out, channel -> writeFully(channel, ByteBuffer.wrap(bytes)));
        return out.path();
    }

    private static void writeFully(FileChannel channel, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            channel.write(bytes);
        }
    }

    private static List<Path> listFiles(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new BadInputException(dir, "is not a folder of tokenizer files");
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(Files::isRegularFile).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }

    private static byte[] read(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }
}
