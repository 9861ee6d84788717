package dev.blip2dl4j.compute;

import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.dnnl.const_dnnl_op_desc_t;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_matmul_desc_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_post_ops;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_attr;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.ShortPointer;

import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static dev.blip2dl4j.compute.DnnlKernels.check;

/**
 * bfloat16 products on oneDNN's matmul primitive: x rounded to bfloat16 (to nearest even), the weight read as
 * stored ({@code [out, in]}, described to oneDNN as the transposed {@code [in, out]} with strides, never
 * reordered in memory by us), float32 accumulation and output. oneDNN runs AMX or AVX512_BF16 dot products,
 * twice float32's FMA rate. Building a primitive costs far more than a small product, so one is kept per shape.
 */
final class Bf16Matmul {
    private static final dnnl_engine ENGINE = new dnnl_engine();
    private static final dnnl_stream STREAM = new dnnl_stream();
    private static final Map<Shape, Primitive> PRIMITIVES = new ConcurrentHashMap<>();
    private static final ThreadLocal<ShortPointer[]> ROWS = ThreadLocal.withInitial(() -> new ShortPointer[] {new ShortPointer(0L)});

    static {
        check(dnnl.dnnl_engine_create(ENGINE, dnnl.dnnl_cpu, 0), "engine");
        check(dnnl.dnnl_stream_create(STREAM, ENGINE, dnnl.dnnl_stream_default_flags), "stream");
    }

    private Bf16Matmul() {
    }

    /** {@code y = x W^T (+ y)} for a bfloat16 weight. */
    static void bf16(FloatMatrix x, StoredTensor w, FloatMatrix y, boolean accumulate) {
        int m = x.rows();
        int k = x.cols();
        ShortPointer rows = rows((long) m * k);
        round(x, rows.asBuffer());
        Primitive primitive = PRIMITIVES.computeIfAbsent(new Shape(m, y.cols(), k, y.rowStride(), accumulate),
                Primitive::new);
        primitive.execute(rows, new BytePointer(w.data().slice()), y.data());
    }

    private static ShortPointer rows(long count) {
        ShortPointer[] held = ROWS.get();
        if (held[0].capacity() < count) {
            held[0].close();
            held[0] = new ShortPointer(count);
        }
        return held[0].position(0).limit(count);
    }

    /** float32 to bfloat16, rounding to nearest even (what PyTorch's {@code .to(torch.bfloat16)} does). */
    private static void round(FloatMatrix x, ShortBuffer out) {
        FloatBuffer in = x.buffer();
        int k = x.cols();
        for (int i = 0; i < x.rows(); i++) {
            long row = i * x.rowStride();
            for (int c = 0; c < k; c++) {
                out.put(i * k + c, FloatConversion.floatToBfloat16(in.get((int) (row + c))));
            }
        }
    }

    private record Shape(int m, int n, int k, long ldc, boolean accumulate) {
    }

    /** One matmul primitive with its memory objects; calls on it take turns. */
    private static final class Primitive {
        private final dnnl_primitive primitive = new dnnl_primitive();
        private final dnnl_memory src = new dnnl_memory();
        private final dnnl_memory weights = new dnnl_memory();
        private final dnnl_memory dst = new dnnl_memory();
        private final dnnl_exec_arg_t args = new dnnl_exec_arg_t(3);

        Primitive(Shape shape) {
            dnnl_memory_desc_t srcDesc = describe(shape.m, shape.k, dnnl.dnnl_bf16, shape.k, 1);
            dnnl_memory_desc_t weightsDesc = describe(shape.k, shape.n, dnnl.dnnl_bf16, 1, shape.k);
            dnnl_memory_desc_t dstDesc = describe(shape.m, shape.n, dnnl.dnnl_f32, shape.ldc, 1);
            dnnl_matmul_desc_t desc = new dnnl_matmul_desc_t();
            check(dnnl.dnnl_matmul_desc_init(desc, srcDesc, weightsDesc, null, dstDesc), "matmul description");
            dnnl_primitive_attr attr = new dnnl_primitive_attr();
            check(dnnl.dnnl_primitive_attr_create(attr), "attributes");
            if (shape.accumulate) {
                dnnl_post_ops ops = new dnnl_post_ops();
                check(dnnl.dnnl_post_ops_create(ops), "post-ops");
                check(dnnl.dnnl_post_ops_append_sum(ops, 1f), "sum post-op");
                check(dnnl.dnnl_primitive_attr_set_post_ops(attr, ops), "post-ops");
                dnnl.dnnl_post_ops_destroy(ops);
            }
            dnnl_primitive_desc pd = new dnnl_primitive_desc();
            check(dnnl.dnnl_primitive_desc_create(pd, new const_dnnl_op_desc_t(desc), attr, ENGINE, null),
                    "matmul for bf16 " + shape);
            check(dnnl.dnnl_primitive_create(primitive, pd), "matmul");
            dnnl.dnnl_primitive_desc_destroy(pd);
            dnnl.dnnl_primitive_attr_destroy(attr);
            check(dnnl.dnnl_memory_create(src, srcDesc, ENGINE, null), "memory");
            check(dnnl.dnnl_memory_create(weights, weightsDesc, ENGINE, null), "memory");
            check(dnnl.dnnl_memory_create(dst, dstDesc, ENGINE, null), "memory");
            args.position(0).arg(dnnl.DNNL_ARG_SRC).memory(src);
            args.position(1).arg(dnnl.DNNL_ARG_WEIGHTS).memory(weights);
            args.position(2).arg(dnnl.DNNL_ARG_DST).memory(dst);
            args.position(0);
        }

        synchronized void execute(Pointer x, Pointer w, Pointer y) {
            check(dnnl.dnnl_memory_set_data_handle(src, x), "memory");
            check(dnnl.dnnl_memory_set_data_handle(weights, w), "memory");
            check(dnnl.dnnl_memory_set_data_handle(dst, y), "memory");
            check(dnnl.dnnl_primitive_execute(primitive, STREAM, 3, args), "matmul");
            check(dnnl.dnnl_stream_wait(STREAM), "matmul");
        }

        private static dnnl_memory_desc_t describe(long rows, long cols, int type, long rowStride, long colStride) {
            dnnl_memory_desc_t desc = new dnnl_memory_desc_t();
            try (LongPointer dims = new LongPointer(rows, cols); LongPointer strides = new LongPointer(rowStride, colStride)) {
                check(dnnl.dnnl_memory_desc_init_by_strides(desc, 2, dims, type, strides), "memory description");
            }
            return desc;
        }
    }
}
