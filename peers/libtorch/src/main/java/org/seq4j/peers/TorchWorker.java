package org.seq4j.peers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.GRUCellImpl;
import org.bytedeco.pytorch.GRUImpl;
import org.bytedeco.pytorch.GRUOptions;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.LSTMCellImpl;
import org.bytedeco.pytorch.LSTMImpl;
import org.bytedeco.pytorch.LSTMOptions;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * libtorch (PyTorch's C++ library, {@code org.bytedeco:pytorch}) from Java, the way a PyTorch user
 * would run the same work: {@code nn::LSTM} and {@code nn::GRU} (sequence-first, like seq4j's
 * time-major input), {@code LSTMCell}/{@code GRUCell} for the streaming step, {@code
 * scaled_dot_product_attention}, and the encoder layer as Python's {@code
 * nn.TransformerEncoderLayer(batch_first=True)} runs it in training (post-norm, ReLU, no dropout:
 * packed in-projection, SDPA, out-projection, add and layer norm, feed-forward, add and layer
 * norm; the C++ frontend's own {@code TransformerEncoderLayer} is sequence-first and computes
 * attention without SDPA, and Python's fused inference fast path is not exposed to Java).
 * Inference runs under {@code NoGradGuard} (torch.no_grad()); training calls {@code backward} with the output
 * gradient, computing the input's and every parameter's gradient; gradients are set to none (as
 * {@code zero_grad()} does by default) untimed before each call. Each call runs in a {@link
 * PointerScope} so its tensors are freed at once, not by the garbage collector.
 */
public final class TorchWorker extends Worker {
  private TorchWorker() {}

  /**
   * Runs the cases; see {@link Worker}.
   *
   * @param args the worker's arguments
   */
  public static void main(String[] args) {
    new TorchWorker().run(args);
  }

  @Override
  protected Map<String, String> info() {
    Map<String, String> info = new LinkedHashMap<>();
    info.put("library", "libtorch (org.bytedeco:pytorch "
        + Worker.mavenVersion("org.bytedeco", "pytorch") + ", OpenBLAS "
        + Worker.mavenVersion("org.bytedeco", "openblas") + ")");
    info.put("cpu capability", torch.get_cpu_capability().getString());
    info.put("threads", "intra-op " + torch.get_num_threads() + ", inter-op "
        + torch.get_num_interop_threads());
    info.put("parallel info", torch.get_parallel_info().getString());
    info.put("config", torch.show_config().getString());
    return info;
  }

  @Override
  protected Measurement.Work create(Case c, String variant) throws Unsupported {
    torch.manual_seed(1);
    return switch (c.kind()) {
      case "lstm", "lstm-bi2", "gru" -> recurrent(c);
      case "lstm-peephole" -> throw new Unsupported("libtorch's LSTM has no peepholes");
      case "stream-lstm", "stream-gru" -> stream(c);
      case "stream-lstm-bf16" -> throw new Unsupported(
          "seq4j's bf16 step weights have no libtorch twin; see the float32 row");
      case "attention" -> attention(c);
      case "encoder" -> encoder(c);
      case "gemm" -> gemm(c);
      default -> throw new IllegalArgumentException("case: unknown kind " + c.kind());
    };
  }

  /** A gradient for {@code backward(gradient)}: retain_graph unset, no create_graph, all inputs. */
  private static void backward(Tensor output, Tensor gradOutput) {
    output.backward(gradOutput, new BoolOptional(), false, new TensorArrayRefOptional());
  }

  /** Sets each tensor's gradient to none (undefined), as {@code zero_grad(set_to_none=True)}. */
  private static void clearGrads(List<Tensor> tensors) {
    for (Tensor t : tensors) {
      t.mutable_grad().reset();
    }
  }

  private abstract static class ScopedWork implements Measurement.Work {
    private final NoGradGuard inference;
    final List<Pointer> owned = new ArrayList<>();

    ScopedWork(boolean training) {
      inference = training ? null : new NoGradGuard();
    }

    abstract void run();

    @Override
    public final void call() {
      try (PointerScope scope = new PointerScope()) {
        run();
      }
    }

    @Override
    public void close() {
      if (inference != null) {
        inference.close();
      }
      for (Pointer p : owned) {
        p.close();
      }
    }
  }

  private static Measurement.Work recurrent(Case c) {
    Module module;
    boolean lstm = !c.kind().equals("gru");
    if (lstm) {
      LSTMOptions options = new LSTMOptions(c.i(), c.h());
      if (c.kind().equals("lstm-bi2")) {
        options.num_layers().put(2);
        options.bidirectional().put(true);
      }
      module = new LSTMImpl(options);
    } else {
      module = new GRUImpl(new GRUOptions(c.i(), c.h()));
    }
    long directions = c.kind().equals("lstm-bi2") ? 2 : 1;
    Tensor input = torch.randn(c.t(), c.n(), c.i()); // (T, N, I): sequence-first
    Tensor gradOutput = torch.randn(c.t(), c.n(), directions * c.h());
    if (c.training()) {
      input.set_requires_grad(true);
    }
    List<Tensor> grads = new ArrayList<>();
    grads.add(input);
    for (Tensor p : module.parameters().get()) {
      grads.add(p);
    }
    return new ScopedWork(c.training()) {
      @Override
      public void prepare() {
        clearGrads(grads);
      }

      @Override
      void run() {
        Tensor output = lstm ? ((LSTMImpl) module).forward(input).get0()
            : ((GRUImpl) module).forward(input).get0();
        if (c.training()) {
          backward(output, gradOutput);
        }
      }
    };
  }

  /** One step of N = 1 through the cell modules; the state is kept in place ({@code copy_}). */
  private static Measurement.Work stream(Case c) {
    boolean lstm = c.kind().equals("stream-lstm");
    LSTMCellImpl lstmCell = lstm ? new LSTMCellImpl(c.i(), c.h()) : null;
    GRUCellImpl gruCell = lstm ? null : new GRUCellImpl(c.i(), c.h());
    Tensor x = torch.randn(1, c.i());
    Tensor h = torch.zeros(1, c.h());
    Tensor cell = torch.zeros(1, c.h());
    return new ScopedWork(false) {
      @Override
      void run() {
        if (lstm) {
          T_TensorTensor_T next = lstmCell.forward(x, new T_TensorTensor_T(h, cell));
          h.copy_(next.get0());
          cell.copy_(next.get1());
        } else {
          h.copy_(gruCell.forward(x, h));
        }
      }
    };
  }

  private static Measurement.Work attention(Case c) {
    Tensor q = torch.randn(c.n(), c.i(), c.t(), c.h()); // (N, heads, T, d)
    Tensor k = torch.randn(c.n(), c.i(), c.t(), c.h());
    Tensor v = torch.randn(c.n(), c.i(), c.t(), c.h());
    Tensor gradOutput = torch.randn(c.n(), c.i(), c.t(), c.h());
    List<Tensor> grads = List.of(q, k, v);
    if (c.training()) {
      for (Tensor t : grads) {
        t.set_requires_grad(true);
      }
    }
    return new ScopedWork(c.training()) {
      @Override
      public void prepare() {
        clearGrads(grads);
      }

      @Override
      void run() {
        Tensor out = sdpa(q, k, v, c.causal());
        if (c.training()) {
          backward(out, gradOutput);
        }
      }
    };
  }

  private static Tensor sdpa(Tensor q, Tensor k, Tensor v, boolean causal) {
    return torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, causal,
        new DoubleOptional(), false);
  }

  /** A parameter: random normal times {@code scale}, requiring its gradient. */
  private static Tensor parameter(List<Tensor> grads, double scale, long... shape) {
    Tensor p = torch.randn(shape).mul(new org.bytedeco.pytorch.Scalar(scale));
    p.set_requires_grad(true);
    grads.add(p);
    return p;
  }

  /** A layer-norm gain: ones, requiring its gradient. */
  private static Tensor ones(List<Tensor> grads, long size) {
    Tensor p = torch.ones(size);
    p.set_requires_grad(true);
    grads.add(p);
    return p;
  }

  /** Python's TransformerEncoderLayer(batch_first=True) training path, op by op. */
  private static Measurement.Work encoder(Case c) {
    long n = c.n();
    long t = c.t();
    long d = c.i();
    long heads = c.h();
    long ff = Case.ENCODER_FF;
    List<Tensor> grads = new ArrayList<>();
    Tensor x = torch.randn(n, t, d); // (N, T, d), batch-first
    Tensor gradOutput = torch.randn(n, t, d);
    if (c.training()) {
      x.set_requires_grad(true);
      grads.add(x);
    }
    double s = 1 / Math.sqrt(d);
    Tensor inW = parameter(grads, s, 3 * d, d);
    Tensor inB = parameter(grads, 0.0, 3 * d);
    Tensor outW = parameter(grads, s, d, d);
    Tensor outB = parameter(grads, 0.0, d);
    Tensor w1 = parameter(grads, s, ff, d);
    Tensor b1 = parameter(grads, 0.0, ff);
    Tensor w2 = parameter(grads, 1 / Math.sqrt(ff), d, ff);
    Tensor b2 = parameter(grads, 0.0, d);
    Tensor g1 = ones(grads, d);
    Tensor n1 = parameter(grads, 0.0, d);
    Tensor g2 = ones(grads, d);
    Tensor n2 = parameter(grads, 0.0, d);
    if (!c.training()) {
      for (Tensor p : grads) {
        p.set_requires_grad(false);
      }
    }
    return new ScopedWork(c.training()) {
      @Override
      public void prepare() {
        clearGrads(grads);
      }

      @Override
      void run() {
        Tensor qkv = torch.linear(x, inW, new TensorOptional(inB)); // (N, T, 3d)
        var parts = qkv.chunk(3, -1);
        Tensor q = parts.get(0).view(n, t, heads, d / heads).transpose(1, 2); // (N, h, T, dh)
        Tensor k = parts.get(1).view(n, t, heads, d / heads).transpose(1, 2);
        Tensor v = parts.get(2).view(n, t, heads, d / heads).transpose(1, 2);
        Tensor a = sdpa(q, k, v, false).transpose(1, 2).reshape(n, t, d);
        Tensor attended = torch.linear(a, outW, new TensorOptional(outB));
        Tensor x1 = torch.layer_norm(x.add(attended), new long[] {d}, new TensorOptional(g1),
            new TensorOptional(n1), 1e-5, true);
        Tensor hidden = torch.relu(torch.linear(x1, w1, new TensorOptional(b1)));
        Tensor y = torch.layer_norm(x1.add(torch.linear(hidden, w2, new TensorOptional(b2))),
            new long[] {d}, new TensorOptional(g2), new TensorOptional(n2), 1e-5, true);
        if (c.training()) {
          backward(y, gradOutput);
        }
      }
    };
  }

  private static Measurement.Work gemm(Case c) {
    Tensor a = torch.randn(c.t(), c.t());
    Tensor b = torch.randn(c.t(), c.t());
    Tensor out = torch.zeros(c.t(), c.t());
    return new ScopedWork(false) {
      @Override
      void run() {
        torch.mm_out(out, a, b);
      }
    };
  }

  @Override
  protected void attentionOnce(long t) {
    Tensor q = torch.randn(1, 8, t, 64).set_requires_grad(true);
    Tensor k = torch.randn(1, 8, t, 64).set_requires_grad(true);
    Tensor v = torch.randn(1, 8, t, 64).set_requires_grad(true);
    Tensor gradOutput = torch.randn(1, 8, t, 64);
    backward(sdpa(q, k, v, true), gradOutput);
  }
}
