package org.seq4j.peers;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.GravesLSTM;
import org.deeplearning4j.nn.conf.layers.LSTM;
import org.deeplearning4j.nn.conf.layers.recurrent.Bidirectional;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.DotProductAttention;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * DeepLearning4j 1.0.0-M2.1 on nd4j-native's oneDNN build, for the layers it has: {@code LSTM}
 * (S, M, L, two bidirectional layers through {@code Bidirectional}), {@code GravesLSTM} (the LSTM
 * with peepholes), the streaming step through {@code rnnTimeStep}, and nd4j's {@code
 * dot_product_attention} op for attention (forward as the op, forward+backward through SameDiff;
 * no causal option). No GRU and no Transformer encoder layer in this version: those rows say so.
 * Recurrent input is DL4J's own layout, {@code (N, I, T)}. A training call activates each layer
 * in training mode and back-propagates the output gradient through them, as {@code
 * MultiLayerNetwork} does inside {@code fit}: input and parameter gradients (DL4J writes its
 * gradients afresh each time; nothing to clear).
 */
public final class Dl4jWorker extends Worker {
  private Dl4jWorker() {}

  /**
   * Runs the cases; see {@link Worker}.
   *
   * @param args the worker's arguments
   */
  public static void main(String[] args) {
    new Dl4jWorker().run(args);
  }

  @Override
  protected Map<String, String> info() {
    Map<String, String> info = new LinkedHashMap<>();
    Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
    info.put("library", "DeepLearning4j " + Worker.mavenVersion("org.deeplearning4j",
        "deeplearning4j-nn") + ", nd4j-native " + Worker.mavenVersion("org.nd4j", "nd4j-native")
        + " (" + System.getProperty("org.bytedeco.javacpp.platform.extension", "") + ")");
    Properties env = Nd4j.getExecutioner().getEnvironmentInformation();
    info.put("environment", env.toString());
    try {
      var ops = NativeOpsHolder.getInstance().getDeviceNativeOps();
      info.put("build", ops.buildInfo());
      info.put("cpu requirements", "minimal met " + ops.isMinimalRequirementsMet()
          + ", optimal met " + ops.isOptimalRequirementsMet());
    } catch (Throwable e) {
      info.put("build", "unknown: " + e);
    }
    return info;
  }

  private static MultiLayerNetwork network(Case c) {
    NeuralNetConfiguration.ListBuilder list = new NeuralNetConfiguration.Builder().seed(1)
        .dataType(DataType.FLOAT).list();
    switch (c.kind()) {
      case "lstm", "stream-lstm" -> list.layer(new LSTM.Builder().nIn(c.i()).nOut(c.h())
          .activation(Activation.TANH).build());
      case "lstm-peephole" -> list.layer(new GravesLSTM.Builder().nIn(c.i()).nOut(c.h())
          .activation(Activation.TANH).build());
      case "lstm-bi2" -> {
        list.layer(new Bidirectional(Bidirectional.Mode.CONCAT, new LSTM.Builder().nIn(c.i())
            .nOut(c.h()).activation(Activation.TANH).build()));
        list.layer(new Bidirectional(Bidirectional.Mode.CONCAT, new LSTM.Builder()
            .nIn(2 * c.h()).nOut(c.h()).activation(Activation.TANH).build()));
      }
      default -> throw new IllegalArgumentException("case: " + c.kind());
    }
    MultiLayerConfiguration conf = list.build();
    MultiLayerNetwork net = new MultiLayerNetwork(conf);
    net.init();
    net.initGradientsView(); // the gradient views backpropGradient writes into (fit does this)
    return net;
  }

  @Override
  protected Measurement.Work create(Case c, String variant) throws Unsupported {
    Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
    Nd4j.getRandom().setSeed(1);
    return switch (c.kind()) {
      case "lstm", "lstm-peephole", "lstm-bi2" -> recurrent(c);
      case "gru", "stream-gru" -> throw new Unsupported("DL4J 1.0.0-M2.1 has no GRU layer");
      case "stream-lstm" -> stream(c);
      case "stream-lstm-bf16" -> throw new Unsupported(
          "seq4j's bf16 step weights have no DL4J twin; see the float32 row");
      case "attention" -> attention(c);
      case "encoder" -> throw new Unsupported("DL4J 1.0.0-M2.1 has no Transformer encoder layer");
      case "gemm" -> gemm(c);
      default -> throw new IllegalArgumentException("case: unknown kind " + c.kind());
    };
  }

  private static Measurement.Work recurrent(Case c) {
    MultiLayerNetwork net = network(c);
    Layer[] layers = net.getLayers();
    long directions = c.kind().equals("lstm-bi2") ? 2 : 1;
    INDArray input = Nd4j.randn(DataType.FLOAT, c.n(), c.i(), c.t()); // (N, I, T)
    INDArray gradOutput = Nd4j.randn(DataType.FLOAT, c.n(), directions * c.h(), c.t());
    LayerWorkspaceMgr none = LayerWorkspaceMgr.noWorkspaces();
    return new Measurement.Work() {
      @Override
      public void call() {
        if (!c.training()) {
          net.output(input, false);
          return;
        }
        INDArray x = input;
        for (Layer layer : layers) {
          x = layer.activate(x, true, none);
        }
        INDArray epsilon = gradOutput;
        for (int k = layers.length - 1; k >= 0; k--) {
          epsilon = layers[k].backpropGradient(epsilon, none).getSecond();
        }
      }

      @Override
      public void close() {
        net.close();
      }
    };
  }

  private static Measurement.Work stream(Case c) {
    MultiLayerNetwork net = network(c);
    INDArray x = Nd4j.randn(DataType.FLOAT, 1, c.i()); // one step of one sample
    net.rnnTimeStep(x);
    return new Measurement.Work() {
      @Override
      public void call() {
        net.rnnTimeStep(x);
      }

      @Override
      public void close() {
        net.close();
      }
    };
  }

  /** nd4j's dot_product_attention: (N, heads, d, T) inputs, scaled, no mask. */
  private static Measurement.Work attention(Case c) throws Unsupported {
    if (c.causal()) {
      throw new Unsupported("nd4j's dot_product_attention (M2.1) has no causal option");
    }
    long[] shape = {c.n(), c.i(), c.h(), c.t()};
    INDArray q = Nd4j.randn(DataType.FLOAT, shape);
    INDArray k = Nd4j.randn(DataType.FLOAT, shape);
    INDArray v = Nd4j.randn(DataType.FLOAT, shape);
    if (!c.training()) {
      return () -> Nd4j.exec(new DotProductAttention(q, k, v, null, true, false));
    }
    SameDiff sd = SameDiff.create();
    SDVariable sq = sd.var("q", q);
    SDVariable sk = sd.var("k", k);
    SDVariable sv = sd.var("v", v);
    SDVariable gradOutput = sd.constant("dout", Nd4j.randn(DataType.FLOAT, shape));
    SDVariable out = sd.nn().dotProductAttention(sq, sk, sv, null, true);
    out.mul(gradOutput).sum().markAsLoss();
    return () -> sd.calculateGradients(Map.of(), "q", "k", "v");
  }

  private static Measurement.Work gemm(Case c) {
    INDArray a = Nd4j.randn(DataType.FLOAT, c.t(), c.t());
    INDArray b = Nd4j.randn(DataType.FLOAT, c.t(), c.t());
    INDArray out = Nd4j.zeros(DataType.FLOAT, c.t(), c.t());
    return () -> Nd4j.gemm(a, b, out, false, false, 1.0, 0.0);
  }

  @Override
  protected void attentionOnce(long t) throws Unsupported {
    throw new Unsupported("peak memory is measured for seq4j and libtorch");
  }
}
