package org.seq4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.seq4j.nn.Embedding;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.Mode;
import org.seq4j.nn.MultiHeadAttention;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentState;
import org.seq4j.nn.ScaledDotProductAttention;
import org.seq4j.nn.TransformerDecoderLayer;
import org.seq4j.nn.TransformerEncoderLayer;
import org.seq4j.train.Adam;
import org.seq4j.train.Checkpoints;
import org.seq4j.train.GradientClipping;
import org.seq4j.train.Initializers;
import org.seq4j.train.Losses;
import org.seq4j.train.Sgd;

/**
 * Issue 12, the tensor classes: each bad input the public API receives is an exception of a
 * documented type whose message names the argument (and the expected and actual value), never a
 * crash, a wrapped size or a raw JDK message; and valid calls next to each refused one still give
 * the right numbers. One nested group per class: sizes, read-only memory, aliasing, messages, the
 * empty product.
 */
class HardeningTest {

  // ---- 1. checked size arithmetic ------------------------------------------------------------

  @Test
  void aByteCountThatOverflowsIsRefusedNotRoundedIntoATinyBlock() {
    try (Arena arena = Arena.ofConfined()) {
      // (2^63 - 1) / 4 floats: the byte count fits, rounding it up to the alignment does not;
      // this used to become a 64-byte block behind a segment of 2^63 bytes
      long floats = Long.MAX_VALUE / 4;
      var e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.uninitialized(arena, floats));
      assertNames(e, "shape", "(" + floats + ",)", "overflows");
      e = assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(arena, floats));
      assertNames(e, "shape", "(" + floats + ",)", "overflows");
      // 2^62 floats are 2^64 bytes: wraps to 0
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.uninitialized(arena, 1L << 62));
      assertNames(e, "shape", "(4611686018427387904,)", "overflows");
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.zeros(arena, Long.MAX_VALUE / 2, 3));
      assertNames(e, "shape", "elements");
      // the valid neighbour
      Tensor small = Tensor.uninitialized(arena, 3).fill(2f);
      assertArrayEquals(new float[] {2, 2, 2}, small.toArray());
    }
  }

  @Test
  void aSegmentCannotPassForAShapeWhoseByteCountWraps() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment empty = arena.allocate(0, 64);
      // 2^62 floats * 4 bytes wraps to 0 = the empty segment's size: accepted before, then a
      // fill wrote 2^64 bytes
      var e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.ofSegment(empty, 1L << 62));
      assertNames(e, "shape", "(4611686018427387904,)", "overflows");
      e = assertThrows(IllegalArgumentException.class, () -> Tensor.ofSegment(empty, 1L << 61, 2));
      assertNames(e, "shape", "overflows");
      MemorySegment eight = arena.allocate(8, 64);
      e = assertThrows(IllegalArgumentException.class, () -> Tensor.ofSegment(eight, 3));
      assertEquals("segment: expected 12 bytes for shape (3,), got 8", e.getMessage());
      assertArrayEquals(new float[] {5, 5}, Tensor.ofSegment(eight, 2).fill(5f).toArray());
    }
  }

  @Test
  void reshapeWhoseSizesOverflowIsAnIllegalArgumentNamingDims() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor empty = Tensor.zeros(arena, 0);
      var e = assertThrows(IllegalArgumentException.class,
          () -> empty.reshape(Long.MAX_VALUE, 2, 0));
      assertNames(e, "dims", "[" + Long.MAX_VALUE + ", 2, 0]", "overflows");
      assertEquals(Shape.of(3, 0), empty.reshape(3, 0).shape());
    }
  }

  @Test
  void layerSizesWhoseProductsOverflowNameTheSize() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> Lstm.builder(3, Long.MAX_VALUE / 2).build());
    assertNames(e, "hiddenSize", String.valueOf(Long.MAX_VALUE / 2), "overflows");
    e = assertThrows(IllegalArgumentException.class,
        () -> Lstm.builder(Long.MAX_VALUE / 2, 4).build());
    assertNames(e, "inputSize", "overflows");
    e = assertThrows(IllegalArgumentException.class,
        () -> new Linear(Long.MAX_VALUE / 2, 4, true, 1));
    assertNames(e, "inputSize, outputSize", "(4, " + Long.MAX_VALUE / 2 + ")", "overflows");
    e = assertThrows(IllegalArgumentException.class, () -> new Embedding(4, Long.MAX_VALUE / 3, 1));
    assertNames(e, "vocabulary, dim", "overflows");
    // 3 * 2^62 wraps to a negative size, 3 * 6148914691236517206 to 2
    e = assertThrows(IllegalArgumentException.class, () -> new MultiHeadAttention(1L << 62, 1));
    assertNames(e, "embedDim", "overflows");
    e = assertThrows(IllegalArgumentException.class,
        () -> new MultiHeadAttention(6148914691236517206L, 1));
    assertNames(e, "embedDim", "overflows");
    e = assertThrows(IllegalArgumentException.class,
        () -> MultiHeadAttention.builder(4, 2).keyDim(-3).build());
    assertNames(e, "keyDim", "-3");
  }

  @Test
  void emptyTensorsInitialiseAsANoOpNotADivisionByZero() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor empty = Tensor.zeros(arena, 0, 3);
      assertSame(empty, Initializers.xavierUniform(empty, 1, 1));
      Tensor noRows = Tensor.zeros(arena, 0, 3);
      assertSame(noRows, Initializers.orthogonal(noRows, 1, 1));
      Tensor w = Initializers.xavierUniform(Tensor.zeros(arena, 4, 6), 1, 1);
      double bound = Math.sqrt(6.0 / 10);
      for (float v : w.toArray()) {
        assertTrue(Math.abs(v) <= bound && v != 0, "value " + v);
      }
    }
  }

  @Test
  void embeddingBackwardChecksItsIndicesInJava() {
    try (Arena arena = Arena.ofConfined(); Embedding embedding = new Embedding(5, 2, 1)) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> embedding.backward(new long[] {1, 5}, Tensor.ones(arena, 2, 2)));
      assertEquals("indices[1]: expected 0 <= index < 5, got 5", e.getMessage());
      embedding.backward(new long[] {1, 1}, Tensor.ones(arena, 2, 2));
      assertArrayEquals(new float[] {2, 2}, embedding.weight().grad().slice(1, 2).toArray());
    }
  }

  // ---- 2. read-only memory -------------------------------------------------------------------

  @Test
  void aReadOnlyTensorIsAnInputButNeverAnOutputOfTensorOps() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.fromArray(arena, new float[] {1, 2, 3, 4}, 2, 2);
      Tensor readOnly = readOnly(Tensor.fromArray(arena, new float[] {1, 0, 0, 1}, 2, 2));
      assertTrue(readOnly.isReadOnly());
      assertTrue(readOnly.slice(0, 1).isReadOnly());
      assertTrue(readOnly.reshape(4).isReadOnly());
      assertFalse(a.isReadOnly());
      var e = assertThrows(IllegalArgumentException.class,
          () -> TensorOps.matmul(a, a, readOnly));
      assertNames(e, "out", "expected writable memory", "read-only");
      e = assertThrows(IllegalArgumentException.class,
          () -> TensorOps.matmul(a, a, readOnly, MatmulOptions.DEFAULT.accumulate()));
      assertNames(e, "out", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> TensorOps.add(a, a, readOnly));
      assertNames(e, "out", "read-only");
      e = assertThrows(IllegalArgumentException.class,
          () -> TensorOps.scale(readOnly, 2f, readOnly));
      assertNames(e, "out", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> TensorOps.axpy(1f, a, readOnly));
      assertNames(e, "y", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> readOnly.fill(0f));
      assertNames(e, "tensor", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> readOnly.set(0f, 0, 0));
      assertNames(e, "tensor", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> readOnly.copyFrom(a));
      assertNames(e, "tensor", "read-only");
      e = assertThrows(IllegalArgumentException.class,
          () -> Initializers.uniform(readOnly, 0, 1, 1));
      assertNames(e, "tensor", "read-only");
      // untouched, and fine as an input
      assertArrayEquals(new float[] {1, 0, 0, 1}, readOnly.toArray());
      Tensor out = Tensor.zeros(arena, 2, 2);
      TensorOps.matmul(a, readOnly, out);
      assertArrayEquals(new float[] {1, 2, 3, 4}, out.toArray());
      TensorOps.add(readOnly, a, out);
      assertArrayEquals(new float[] {2, 2, 3, 5}, out.toArray());
      assertEquals(4f, readOnly.copy(arena).fill(4f).get(1, 1));
    }
  }

  @Test
  void aReadOnlyMappedFileIsRefusedAsAnOutputInsteadOfCrashingTheJvm(@TempDir Path dir)
      throws IOException {
    Path file = dir.resolve("weights.f32");
    try (Arena arena = Arena.ofConfined()) {
      Tensor source = Tensor.fromArray(arena, new float[] {1, 2, 3, 4, 5, 6}, 6);
      Files.write(file, source.segment().toArray(ValueLayout.JAVA_BYTE));
    }
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        Arena arena = Arena.ofConfined()) {
      MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, 24, arena);
      Tensor weights = Tensor.ofSegment(mapped, 2, 3);
      assertTrue(weights.isReadOnly());
      // native code writing here would be a SIGSEGV
      var e = assertThrows(IllegalArgumentException.class,
          () -> TensorOps.scale(Tensor.ones(arena, 2, 3), 2f, weights));
      assertNames(e, "out", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> weights.fill(0f));
      assertNames(e, "tensor", "read-only");
      Tensor doubled = Tensor.zeros(arena, 2, 3);
      TensorOps.scale(weights, 2f, doubled);
      assertArrayEquals(new float[] {2, 4, 6, 8, 10, 12}, doubled.toArray());
    }
  }

  @Test
  void recurrentOutputsAndStatesMustBeWritable() {
    try (Arena arena = Arena.ofConfined();
        Lstm lstm = Lstm.builder(3, 4).seed(7).backend(Backend.BLAS).build()) {
      Tensor input = Tensor.randomNormal(arena, 1, 5, 2, 3);
      Tensor output = Tensor.zeros(arena, 5, 2, 4);
      RecurrentState state = new RecurrentState(Tensor.zeros(arena, 1, 2, 4),
          Tensor.zeros(arena, 1, 2, 4));
      var e = assertThrows(IllegalArgumentException.class,
          () -> lstm.forward(input, null, readOnly(output), state));
      assertNames(e, "output", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(input, null, output,
          new RecurrentState(readOnly(state.hidden()), state.cell())));
      assertNames(e, "finalState.hidden", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(input, null, output,
          new RecurrentState(state.hidden(), readOnly(state.cell()))));
      assertNames(e, "finalState.cell", "read-only");
      Tensor stepInput = Tensor.randomNormal(arena, 2, 2, 3);
      e = assertThrows(IllegalArgumentException.class, () -> lstm.step(stepInput,
          new RecurrentState(state.hidden(), readOnly(state.cell())), null));
      assertNames(e, "state.cell", "read-only");
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(stepInput, state, readOnly(Tensor.zeros(arena, 2, 4))));
      assertNames(e, "output", "read-only");
      // a read-only input and initial state are fine, and give the arena forward's numbers
      RecurrentState initial = new RecurrentState(readOnly(Tensor.randomNormal(arena, 3, 1, 2, 4)),
          readOnly(Tensor.randomNormal(arena, 4, 1, 2, 4)));
      lstm.forward(readOnly(input), initial, output, state);
      RecurrentLayer.Result reference;
      try (var inference = org.seq4j.Autograd.noGrad()) { // the same (inference) forward
        reference = lstm.forward(arena, input, initial);
      }
      assertArrayEquals(reference.output().toArray(), output.toArray());
      assertArrayEquals(reference.finalState().cell().toArray(), state.cell().toArray());
    }
  }

  @Test
  void gradientsParametersAndLossGradientsMustBeWritable(@TempDir Path dir) throws IOException {
    try (Arena arena = Arena.ofShared()) {
      Tensor prediction = Tensor.fromArray(arena, new float[] {1, 2}, 2);
      Tensor target = Tensor.fromArray(arena, new float[] {0, 0}, 2);
      var e = assertThrows(IllegalArgumentException.class, () -> Losses.meanSquaredError(
          prediction, target, readOnly(Tensor.zeros(arena, 2))));
      assertNames(e, "gradient", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> Losses.crossEntropy(
          Tensor.zeros(arena, 1, 3), new long[] {1}, readOnly(Tensor.zeros(arena, 1, 3))));
      assertNames(e, "gradient", "read-only");
      e = assertThrows(IllegalArgumentException.class, () -> Parameter.of("w",
          Tensor.zeros(arena, 2), readOnly(Tensor.zeros(arena, 2))));
      assertNames(e, "grad", "read-only");
      // a frozen (read-only) value is a valid parameter for inference, but no optimizer steps it
      Parameter frozen = Parameter.of("frozen", readOnly(Tensor.ones(arena, 2)),
          Tensor.zeros(arena, 2));
      e = assertThrows(IllegalArgumentException.class,
          () -> Sgd.builder(List.of(frozen)).build());
      assertNames(e, "parameters: frozen", "read-only");
      e = assertThrows(IllegalArgumentException.class,
          () -> Adam.builder(List.of(frozen)).build());
      assertNames(e, "parameters: frozen", "read-only");
      // nor does a checkpoint load write it
      Path checkpoint = dir.resolve("model.safetensors");
      Checkpoints.save(checkpoint, List.of(frozen), null, Map.of());
      e = assertThrows(IllegalArgumentException.class,
          () -> Checkpoints.load(checkpoint, List.of(frozen), null));
      assertNames(e, "parameters[frozen]", "read-only");
      Tensor gradient = Tensor.zeros(arena, 2);
      assertEquals(2.5f, Losses.meanSquaredError(prediction, target, gradient), 1e-6f);
      assertArrayEquals(new float[] {1, 2}, gradient.toArray());
    }
  }

  // ---- 3. aliasing ---------------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(value = Backend.class, names = {"BLAS", "ONEDNN"})
  void anLstmStateWhoseHiddenAndCellOverlapIsRefused(Backend backend) {
    try (Arena arena = Arena.ofConfined();
        Lstm lstm = Lstm.builder(3, 4).seed(7).backend(backend).build()) {
      Tensor shared = Tensor.randomNormal(arena, 1, 1, 2, 4);
      Tensor input = Tensor.randomNormal(arena, 2, 2, 3);
      // one tensor as both, and a half-overlapping view
      var e = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(input, new RecurrentState(shared, shared), null));
      assertNames(e, "state.hidden", "must not share memory with state.cell");
      Tensor wide = Tensor.zeros(arena, 12);
      Tensor hidden = Tensor.ofSegment(wide.segment().asSlice(0, 32), 1, 2, 4);
      Tensor cell = Tensor.ofSegment(wide.segment().asSlice(16, 32), 1, 2, 4);
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(input, new RecurrentState(hidden, cell), null));
      assertNames(e, "state.hidden", "state.cell");
      Tensor sequence = Tensor.randomNormal(arena, 3, 5, 2, 3);
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(sequence, null,
          Tensor.zeros(arena, 5, 2, 4), new RecurrentState(hidden, cell)));
      assertNames(e, "finalState.hidden", "finalState.cell");
      // the valid neighbour: disjoint state, both backends give the arena forward's numbers
      RecurrentState state = new RecurrentState(Tensor.zeros(arena, 1, 2, 4),
          Tensor.zeros(arena, 1, 2, 4));
      Tensor output = Tensor.zeros(arena, 2, 4);
      lstm.step(input, state, output);
      var reference = lstm.forward(arena, input.reshape(1, 2, 3));
      // the streaming kernel against the sequence kernel: the recurrent tolerance
      assertClose(reference.output().toArray(), output.toArray());
      assertClose(reference.finalState().cell().toArray(), state.cell().toArray());
    }
  }

  @Test
  void stepOutputAndInputMustNotAliasTheState() {
    try (Arena arena = Arena.ofConfined();
        Lstm lstm = Lstm.builder(4, 4).numLayers(2).seed(7).backend(Backend.BLAS).build()) {
      RecurrentState state = new RecurrentState(Tensor.zeros(arena, 2, 2, 4),
          Tensor.zeros(arena, 2, 2, 4));
      Tensor input = Tensor.randomNormal(arena, 2, 2, 4);
      var e = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(input, state, state.hidden().slice(1, 2).reshape(2, 4)));
      assertNames(e, "output", "state.hidden");
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(input, state, state.cell().slice(0, 1).reshape(2, 4)));
      assertNames(e, "output", "state.cell");
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(state.cell().slice(1, 2).reshape(2, 4), state, null));
      assertNames(e, "state.cell", "input");
      // nothing was written by the refused calls
      assertArrayEquals(new float[16], state.hidden().toArray());
      assertArrayEquals(new float[16], state.cell().toArray());
    }
  }

  @Test
  void forwardIntoRefusesEveryOverlapBetweenWhatItWritesAndReads() {
    try (Arena arena = Arena.ofConfined();
        Lstm lstm = Lstm.builder(4, 4).seed(7).backend(Backend.BLAS).build()) {
      Tensor input = Tensor.randomNormal(arena, 1, 3, 2, 4);
      Tensor output = Tensor.zeros(arena, 3, 2, 4);
      RecurrentState finalState = new RecurrentState(Tensor.zeros(arena, 1, 2, 4),
          Tensor.zeros(arena, 1, 2, 4));
      var e = assertThrows(IllegalArgumentException.class,
          () -> lstm.forward(input, null, input, finalState));
      assertNames(e, "output", "input");
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(input, null, output,
          new RecurrentState(output.slice(0, 1), finalState.cell())));
      assertNames(e, "output", "finalState.hidden");
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(input,
          new RecurrentState(finalState.cell(), Tensor.zeros(arena, 1, 2, 4)), output,
          finalState));
      assertNames(e, "finalState.cell", "initial.hidden");
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(input,
          new RecurrentState(Tensor.zeros(arena, 1, 2, 4), output.slice(2, 3)), output,
          finalState));
      assertNames(e, "output", "initial.cell");
      lstm.forward(input, null, output, finalState);
      try (var inference = org.seq4j.Autograd.noGrad()) { // the same (inference) forward
        assertArrayEquals(lstm.forward(arena, input).output().toArray(), output.toArray());
      }
    }
  }

  @Test
  void lossGradientsAndOptimizerParametersMustNotAlias() {
    try (Arena arena = Arena.ofConfined(); Linear linear = new Linear(2, 2, true, 1)) {
      Tensor prediction = Tensor.fromArray(arena, new float[] {1, 2}, 2);
      Tensor target = Tensor.fromArray(arena, new float[] {0, 0}, 2);
      var e = assertThrows(IllegalArgumentException.class,
          () -> Losses.meanSquaredError(prediction, target, target));
      assertNames(e, "gradient", "target");
      e = assertThrows(IllegalArgumentException.class, () -> Losses.binaryCrossEntropyWithLogits(
          prediction, target, target));
      assertNames(e, "gradient", "targets");
      // the same parameter twice would be stepped twice per step
      Parameter weight = linear.weight();
      e = assertThrows(IllegalArgumentException.class,
          () -> Sgd.builder(List.of(weight, linear.bias(), weight)).build());
      assertNames(e, "parameters", "weight", "share memory");
      e = assertThrows(IllegalArgumentException.class, () -> Adam.builder(List.of(weight,
          Parameter.prefixed("again.", List.of(weight)).get(0))).build());
      assertNames(e, "parameters", "weight", "share memory");
      try (Sgd sgd = Sgd.builder(linear.parameters()).learningRate(1).build()) {
        float before = weight.data().get(0, 0);
        weight.grad().set(0.25f, 0, 0);
        sgd.step();
        assertEquals(before - 0.25f, weight.data().get(0, 0), 1e-6f);
      }
    }
  }

  // ---- 4. messages name the user's argument --------------------------------------------------

  @Test
  void closedTensorsAreNamedAfterTheUsersArgumentNotTheJdksWords() {
    Tensor closed;
    try (Arena gone = Arena.ofConfined()) {
      closed = Tensor.zeros(gone, 2, 3);
    }
    try (Arena arena = Arena.ofConfined(); Linear linear = new Linear(3, 2, true, 1)) {
      var e = assertThrows(IllegalStateException.class, () -> linear.forward(arena, closed));
      assertEquals("input: the tensor's arena is closed", e.getMessage());
      Tensor input = Tensor.ones(arena, 2, 3);
      Tensor gradClosed;
      try (Arena gone = Arena.ofConfined()) {
        gradClosed = Tensor.zeros(gone, 2, 2);
      }
      e = assertThrows(IllegalStateException.class,
          () -> linear.backward(arena, input, gradClosed));
      assertEquals("gradOutput: the tensor's arena is closed", e.getMessage());
      Tensor y = linear.forward(arena, input);
      e = assertThrows(IllegalStateException.class, () -> y.backward(gradClosed));
      assertEquals("gradient: the tensor's arena is closed", e.getMessage());
      try (Embedding embedding = new Embedding(4, 3, 1)) {
        e = assertThrows(IllegalStateException.class,
            () -> embedding.backward(new long[] {0, 1}, closed));
        assertEquals("gradOutput: the tensor's arena is closed", e.getMessage());
      }
    }
  }

  @Test
  void aClosedResultArenaIsNamedEvenWhenLengthsAreCopiedFirst() {
    Arena closedArena = Arena.ofConfined();
    closedArena.close();
    try (Arena arena = Arena.ofConfined(); Lstm lstm = Lstm.builder(3, 4).seed(7).build()) {
      Tensor input = Tensor.randomNormal(arena, 1, 5, 2, 3);
      var e = assertThrows(IllegalStateException.class, () -> lstm.forward(closedArena, input,
          null, new long[] {5, 3}, Mode.INFERENCE));
      assertEquals("arena: it is closed", e.getMessage());
      e = assertThrows(IllegalStateException.class,
          () -> lstm.forward(closedArena, input, null, null, Mode.INFERENCE));
      assertEquals("arena: it is closed", e.getMessage());
      assertEquals(Shape.of(5, 2, 4),
          lstm.forward(arena, input, null, new long[] {5, 3}, Mode.INFERENCE).output().shape());
    }
  }

  @Test
  void optimizersAndClippingNameTheParameterOfAClosedLayer() {
    Linear linear = new Linear(3, 2, true, 1);
    List<Parameter> parameters = linear.parameters();
    try (Sgd sgd = Sgd.builder(parameters).build()) {
      linear.close();
      var e = assertThrows(IllegalStateException.class, sgd::step);
      assertEquals("parameters: weight: the tensor's arena is closed", e.getMessage());
      e = assertThrows(IllegalStateException.class, () -> GradientClipping.globalNorm(parameters));
      assertEquals("parameters: the gradient of weight: the tensor's arena is closed",
          e.getMessage());
      e = assertThrows(IllegalStateException.class,
          () -> GradientClipping.clipByValue(parameters, 1));
      assertTrue(e.getMessage().startsWith("parameters: the gradient of weight"), e.getMessage());
      e = assertThrows(IllegalStateException.class, () -> parameters.get(1).zeroGrad());
      assertEquals("bias.grad: the tensor's arena is closed", e.getMessage());
      assertEquals(0, sgd.steps());
    }
  }

  @Test
  void anArenaOfAnotherThreadIsAWrongThreadExceptionNamingTheArena() throws Exception {
    try (Arena confined = Arena.ofConfined()) {
      for (var factory : List.<java.util.function.Supplier<Tensor>>of(
          () -> Tensor.uninitialized(confined, 4), () -> Tensor.zeros(confined, 4))) {
        var e = assertThrows(ExecutionException.class,
            () -> CompletableFuture.supplyAsync(factory).get());
        assertTrue(e.getCause() instanceof WrongThreadException, e.getCause().toString());
        assertTrue(e.getCause().getMessage().startsWith("arena: it is confined to another"),
            e.getCause().getMessage());
      }
      assertEquals(4, Tensor.uninitialized(confined, 4).size());
    }
  }

  @Test
  void transformerLayersNameTheirOwnArgumentsNotTheAttentions() {
    try (Arena arena = Arena.ofConfined();
        TransformerEncoderLayer encoder = TransformerEncoderLayer.builder(6, 2)
            .dimFeedforward(5).dropout(0f).seed(1).build();
        TransformerDecoderLayer decoder = TransformerDecoderLayer.builder(6, 2)
            .dimFeedforward(5).dropout(0f).seed(1).normFirst(true).build();
        MultiHeadAttention attention = new MultiHeadAttention(6, 2)) {
      var none = ScaledDotProductAttention.Options.DEFAULT;
      Tensor target = Tensor.randomNormal(arena, 1, 3, 2, 6);
      Tensor memory = Tensor.randomNormal(arena, 2, 4, 2, 6);
      var e = assertThrows(IllegalArgumentException.class, () -> encoder.forward(arena,
          Tensor.zeros(arena, 3, 2, 5), none, Mode.INFERENCE));
      assertEquals("x: expected shape (T, N, 6), got (3, 2, 5)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> decoder.forward(arena, target,
          Tensor.zeros(arena, 4, 2, 5), none, none, Mode.INFERENCE));
      assertEquals("memory: expected shape (S, N, 6), got (4, 2, 5)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> decoder.forward(arena,
          Tensor.zeros(arena, 3, 2, 5), memory, none, none, Mode.INFERENCE));
      assertEquals("target: expected shape (T, N, 6), got (3, 2, 5)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> decoder.forward(arena, target,
          Tensor.zeros(arena, 4, 3, 6), none, none, Mode.INFERENCE));
      assertEquals("memory: expected a batch of 2 (that of target (3, 2, 6)), got shape"
          + " (4, 3, 6)", e.getMessage());
      var cache = decoder.newCache(arena, 2, 8);
      e = assertThrows(IllegalArgumentException.class, () -> decoder.forwardStep(arena,
          Tensor.zeros(arena, 1, 2, 5), memory, none, cache));
      assertEquals("targetStep: expected shape (T, N, 6), got (1, 2, 5)", e.getMessage());
      var selfCache = attention.newCache(arena, 2, 8);
      e = assertThrows(IllegalArgumentException.class,
          () -> attention.forwardStep(arena, Tensor.zeros(arena, 1, 2, 5), selfCache));
      assertEquals("step: expected shape (T, N, 6), got (1, 2, 5)", e.getMessage());
      assertEquals(Shape.of(3, 2, 6),
          decoder.forward(arena, target, memory, none, none, Mode.INFERENCE).output().shape());
    }
  }

  // ---- 5. the empty product ------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(Backend.class)
  void anEmptyProductIsZerosOrTheScaledAccumulatorOnEveryBackend(Backend backend) {
    try (Arena arena = Arena.ofConfined()) {
      MatmulOptions options = MatmulOptions.DEFAULT.backend(backend);
      for (int transpose = 0; transpose < 4; transpose++) {
        boolean ta = (transpose & 1) != 0;
        boolean tb = (transpose & 2) != 0;
        Tensor a = ta ? Tensor.zeros(arena, 0, 2) : Tensor.zeros(arena, 2, 0);
        Tensor b = tb ? Tensor.zeros(arena, 3, 0) : Tensor.zeros(arena, 0, 3);
        MatmulOptions o = options.transposeA(ta).transposeB(tb);
        // beta = 0 overwrites without reading: a NaN in out does not survive
        Tensor out = Tensor.full(arena, Float.NaN, 2, 3);
        TensorOps.matmul(a, b, out, o);
        assertArrayEquals(new float[6], out.toArray(), backend + " " + o);
        Tensor accumulator = Tensor.full(arena, 2f, 2, 3);
        TensorOps.matmul(a, b, accumulator, o.alpha(3f).beta(0.5f));
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1}, accumulator.toArray(), backend + " " + o);
        TensorOps.matmul(a, b, accumulator, o.accumulate());
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1}, accumulator.toArray(), backend + " " + o);
      }
      // m = 0 and n = 0: nothing to write, no error
      TensorOps.matmul(Tensor.zeros(arena, 0, 4), Tensor.ones(arena, 4, 3),
          Tensor.zeros(arena, 0, 3), options);
      Tensor noColumns = Tensor.zeros(arena, 2, 0);
      TensorOps.matmul(Tensor.ones(arena, 2, 4), Tensor.zeros(arena, 4, 0), noColumns, options);
      assertEquals(0, noColumns.size());
      Tensor fresh = TensorOps.matmul(arena, Tensor.zeros(arena, 2, 0), Tensor.zeros(arena, 0, 2));
      assertArrayEquals(new float[4], fresh.toArray());
      // and the neighbour k = 1 is a real product
      Tensor product = Tensor.zeros(arena, 2, 2);
      TensorOps.matmul(Tensor.fromArray(arena, new float[] {1, 2}, 2, 1),
          Tensor.fromArray(arena, new float[] {3, 4}, 1, 2), product, options);
      assertArrayEquals(new float[] {3, 4, 6, 8}, product.toArray());
    }
  }

  // ---- helpers

  /** A read-only view of {@code t}'s memory. */
  private static Tensor readOnly(Tensor t) {
    return Tensor.ofSegment(t.segment().asReadOnly(), t.shape().dims());
  }

  /** The message starts with the argument's name and contains every other part. */
  private static void assertNames(Exception e, String argument, String... parts) {
    String message = e.getMessage();
    assertTrue(message.startsWith(argument + ":") || message.startsWith(argument),
        "expected the message to name '" + argument + "': " + message);
    for (String part : parts) {
      assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
    }
  }

  private static void assertClose(float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length);
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], actual[i], 1e-4f * (1 + Math.abs(expected[i])), "element " + i);
    }
  }
}
