package org.seq4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.seq4j.Tensor;
import org.seq4j.io.SafeTensors;
import org.seq4j.nn.Gru;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Mode;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentLayer;

class CheckpointsTest {
  @TempDir Path folder;

  /** One training step of an LSTM on fixed data: MSE of the output against a target. */
  static void trainStep(Lstm lstm, Optimizer optimizer, Tensor x, Tensor target) {
    try (Arena arena = Arena.ofConfined()) {
      RecurrentLayer.Result result = lstm.forward(arena, x, null, null, Mode.TRAINING);
      Tensor grad = Tensor.zeros(arena, result.output().shape().dims());
      Losses.meanSquaredError(result.output(), target, grad);
      optimizer.zeroGrad();
      lstm.backward(arena, result.context(), grad, null);
      optimizer.step();
    }
  }

  @Test
  void saveAndResumeGiveBitIdenticalParametersAfterFurtherSteps() throws IOException {
    Path checkpoint = folder.resolve("lstm.safetensors");
    try (Arena data = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(data, 1, 6, 3, 4);
      Tensor target = Tensor.randomNormal(data, 2, 6, 3, 5);
      float[][] continued;
      try (Lstm lstm = Lstm.builder(4, 5).peepholes(true).seed(3).build();
          Adam adam = Adam.adamW(lstm.parameters()).learningRate(0.01).build()) {
        for (int i = 0; i < 3; i++) {
          trainStep(lstm, adam, x, target);
        }
        Checkpoints.save(checkpoint, lstm.parameters(), adam, Map.of("epoch", "3"));
        for (int i = 0; i < 4; i++) {
          trainStep(lstm, adam, x, target);
        }
        continued = lstm.parameters().stream().map(p -> p.data().toArray())
            .toArray(float[][]::new);
      }
      try (Lstm fresh = Lstm.builder(4, 5).peepholes(true).seed(99).build();
          Adam adam = Adam.adamW(fresh.parameters()).learningRate(0.5).build()) {
        Map<String, String> metadata = Checkpoints.load(checkpoint, fresh.parameters(), adam);
        assertEquals("3", metadata.get("epoch"));
        assertEquals(3, adam.steps());
        assertEquals(0.01, adam.learningRate(),
            org.seq4j.reference.Tolerances.DOUBLE_FEW_OPERATIONS);
        for (int i = 0; i < 4; i++) {
          trainStep(fresh, adam, x, target);
        }
        List<Parameter> parameters = fresh.parameters();
        for (int i = 0; i < parameters.size(); i++) {
          assertArrayEquals(continued[i], parameters.get(i).data().toArray(),
              parameters.get(i).name() + " resumes bit-identically");
        }
      }
    }
  }

  @Test
  void aCheckpointOfAnotherModelIsRefusedWithTheReason() throws IOException {
    Path checkpoint = folder.resolve("gru.safetensors");
    try (Gru gru = Gru.builder(3, 4).build(); Lstm lstm = Lstm.builder(3, 4).build();
        Gru wider = Gru.builder(3, 6).build()) {
      Checkpoints.save(checkpoint, gru.parameters(), null, Map.of());
      var e = assertThrows(IllegalArgumentException.class,
          () -> Checkpoints.load(checkpoint, wider.parameters(), null));
      assertTrue(e.getMessage().contains("weight_ih_l0 has shape (12, 3) there and (18, 3) here"),
          e.getMessage());
      try (Sgd sgd = Sgd.builder(lstm.parameters()).build()) {
        e = assertThrows(IllegalArgumentException.class,
            () -> Checkpoints.load(checkpoint, lstm.parameters(), sgd));
        assertTrue(e.getMessage().contains("holds the state of no optimizer, not of Sgd"),
            e.getMessage());
      }
      try (Gru twoLayers = Gru.builder(3, 4).numLayers(2).build()) {
        e = assertThrows(IllegalArgumentException.class,
            () -> Checkpoints.load(checkpoint, twoLayers.parameters(), null));
        assertTrue(e.getMessage().contains("it has no weight_ih_l1"), e.getMessage());
      }
    }
  }

  @Test
  void safetensorsRoundTripAndRejectCorruptFiles() throws IOException {
    Path file = folder.resolve("t.safetensors");
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.randomNormal(arena, 1, 2, 3);
      Tensor scalar = Tensor.full(arena, 7f);
      SafeTensors.write(file, new java.util.LinkedHashMap<>(Map.of("a", a)),
          Map.of("note", "quote \" and \\ backslash"));
      SafeTensors.File read = SafeTensors.read(file, arena);
      assertArrayEquals(a.toArray(), read.tensors().get("a").toArray());
      assertEquals("quote \" and \\ backslash", read.metadata().get("note"));
      // the layout of the format: 8-byte little-endian header length, then JSON
      byte[] bytes = Files.readAllBytes(file);
      long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
      assertTrue(header.contains("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"),
          header);
      assertEquals(8 + headerLength + 24, bytes.length);
      SafeTensors.write(file, Map.of("s", scalar), Map.of());
      assertEquals(7f, SafeTensors.read(file, arena).tensors().get("s").get());

      Files.write(file, new byte[] {1, 2, 3});
      var e = assertThrows(IOException.class, () -> SafeTensors.read(file, arena));
      assertTrue(e.getMessage().contains("not a safetensors file"), e.getMessage());
      byte[] broken = new byte[8 + 4];
      ByteBuffer.wrap(broken).order(ByteOrder.LITTLE_ENDIAN).putLong(4).put("{\"a\"".getBytes());
      Files.write(file, broken);
      e = assertThrows(IOException.class, () -> SafeTensors.read(file, arena));
      assertTrue(e.getMessage().contains("malformed safetensors header"), e.getMessage());
    }
  }

  // ---- all-or-nothing loading

  /** Two parameters with distinct values, an Adam with non-zero moments after one step. */
  record Model(Arena arena, List<Parameter> parameters, Adam adam) implements AutoCloseable {
    static Model of(long seed, long... lastShape) {
      Arena arena = Arena.ofConfined();
      Parameter a = Parameter.of("a", Tensor.randomNormal(arena, seed, 2, 3),
          Tensor.zeros(arena, 2, 3));
      Parameter b = Parameter.of("b", Tensor.randomNormal(arena, seed + 1, lastShape),
          Tensor.zeros(arena, lastShape));
      List<Parameter> parameters = List.of(a, b);
      Adam adam = Adam.adamW(parameters).learningRate(0.25).build();
      a.grad().fill(0.5f);
      b.grad().fill(-1.5f);
      adam.step();
      return new Model(arena, parameters, adam);
    }

    /** Every bit of every parameter and optimizer state tensor, the steps and learning rate. */
    List<Object> snapshot() {
      List<Object> bits = new ArrayList<>();
      for (Parameter p : parameters) {
        bits.add(List.of(p.name(), java.util.Arrays.toString(
            p.data().segment().toArray(java.lang.foreign.ValueLayout.JAVA_INT))));
      }
      adam.state().forEach((name, t) -> bits.add(List.of(name, java.util.Arrays.toString(
          t.segment().toArray(java.lang.foreign.ValueLayout.JAVA_INT)))));
      bits.add(adam.steps());
      bits.add(adam.learningRate());
      return bits;
    }

    @Override
    public void close() {
      adam.close();
      arena.close();
    }
  }

  /** Loads {@code file} into a fresh model, expects {@code type}, and checks nothing changed. */
  <T extends Exception> T assertLoadFailsUntouched(Path file, Class<T> type, String reason,
      long... lastShape) {
    try (Model target = Model.of(99, lastShape)) {
      List<Object> before = target.snapshot();
      T e = assertThrows(type, () -> Checkpoints.load(file, target.parameters(), target.adam()));
      assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
      assertTrue(e.getMessage().contains(reason), e.getMessage());
      assertEquals(before, target.snapshot(), "a failed load changes nothing");
      return e;
    }
  }

  @Test
  void aFailedLoadLeavesParametersAndOptimizerStateBitIdentical() throws IOException {
    Path file = folder.resolve("source.safetensors");
    try (Model source = Model.of(1, 4)) {
      Checkpoints.save(file, source.parameters(), source.adam(), Map.of());
      // a correct load succeeds and changes everything
      try (Model target = Model.of(99, 4)) {
        Checkpoints.load(file, target.parameters(), target.adam());
        assertEquals(source.snapshot(), target.snapshot());
      }
    }
    // wrong shape of the last tensor: the first would have been written by a naive loader
    assertLoadFailsUntouched(file, IllegalArgumentException.class,
        "b has shape (4,) there and (5,) here", 5);
    // missing key
    Path missing = folder.resolve("missing.safetensors");
    try (Model source = Model.of(1, 4)) {
      Checkpoints.save(missing, source.parameters().subList(0, 1), null, Map.of());
    }
    try (Model target = Model.of(99, 4)) {
      List<Object> before = target.snapshot();
      var e = assertThrows(IllegalArgumentException.class,
          () -> Checkpoints.load(missing, target.parameters(), null));
      assertTrue(e.getMessage().contains("it has no b"), e.getMessage());
      assertEquals(before, target.snapshot());
    }
    // unexpected key, strict; accepted when not strict
    Path extra = folder.resolve("extra.safetensors");
    try (Model source = Model.of(1, 4); Arena arena = Arena.ofConfined()) {
      List<Parameter> more = new ArrayList<>(source.parameters());
      more.add(Parameter.of("c", Tensor.ones(arena, 1), Tensor.zeros(arena, 1)));
      Checkpoints.save(extra, more, null, Map.of());
      try (Model target = Model.of(99, 4)) {
        List<Object> before = target.snapshot();
        var e = assertThrows(IllegalArgumentException.class,
            () -> Checkpoints.load(extra, target.parameters(), null));
        assertTrue(e.getMessage().contains("tensors the model lacks: [c]"), e.getMessage());
        assertEquals(before, target.snapshot());
        Checkpoints.load(extra, target.parameters(), null, false);
        assertArrayEquals(source.parameters().get(1).data().toArray(),
            target.parameters().get(1).data().toArray());
      }
    }
    // wrong dtype: b stored as I64 (F16, BF16 and F64 would be converted)
    Path f16 = folder.resolve("f16.safetensors");
    byte[] good = Files.readAllBytes(missing); // holds a (2, 3) only
    long headerLength = ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    String header = new String(good, 8, (int) headerLength, StandardCharsets.UTF_8).trim();
    String withB = header.substring(0, header.length() - 1)
        + ",\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[24,32]}}";
    byte[] json = withB.getBytes(StandardCharsets.UTF_8);
    Files.write(f16, ByteBuffer.allocate(8 + json.length + 32).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(json.length).put(json).put(good, 8 + (int) headerLength, 24).array());
    try (Model target = Model.of(99, 4)) {
      List<Object> before = target.snapshot();
      var e = assertThrows(IllegalArgumentException.class,
          () -> Checkpoints.load(f16, target.parameters(), null));
      assertTrue(e.getMessage().contains(f16.toString())
          && e.getMessage().contains("b has dtype I64 there and F32 here"), e.getMessage());
      assertEquals(before, target.snapshot());
    }
    // truncated file
    Path truncated = folder.resolve("truncated.safetensors");
    byte[] whole = Files.readAllBytes(file);
    Files.write(truncated, java.util.Arrays.copyOf(whole, whole.length - 3));
    assertLoadFailsUntouched(truncated, IOException.class,
        "run past the end of the data section", 4);
    // malformed optimizer metadata, found only after the tensors matched
    for (String steps : List.of("-1", "x", "99999999999999999999", "")) {
      Path meta = folder.resolve("meta.safetensors");
      try (Model source = Model.of(1, 4)) {
        Map<String, Tensor> tensors = new java.util.LinkedHashMap<>();
        source.parameters().forEach(p -> tensors.put(p.name(), p.data()));
        source.adam().state().forEach((k, v) -> tensors.put("optimizer." + k, v));
        SafeTensors.write(meta, tensors, Map.of("optimizer", "Adam", "optimizer.steps", steps,
            "optimizer.learning_rate", "0.5"));
      }
      assertLoadFailsUntouched(meta, IOException.class, "optimizer.steps is '" + steps + "'", 4);
    }
    // another optimizer
    try (Model source = Model.of(1, 4); Sgd sgd = Sgd.builder(source.parameters()).build()) {
      Checkpoints.save(file, source.parameters(), sgd, Map.of());
    }
    assertLoadFailsUntouched(file, IllegalArgumentException.class,
        "holds the state of Sgd, not of Adam", 4);
  }

  @Test
  void aHostileFileNeverChangesTheModel() throws IOException {
    Path file = folder.resolve("hostile.safetensors");
    String entry = "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}";
    for (String header : List.of("{" + entry + "," + entry + "}", "{" + entry + ",",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}")) {
      byte[] json = header.getBytes(StandardCharsets.UTF_8);
      Files.write(file, ByteBuffer.allocate(8 + json.length + 40).order(ByteOrder.LITTLE_ENDIAN)
          .putLong(json.length).put(json).array());
      assertLoadFailsUntouched(file, IOException.class, "hostile.safetensors", 4);
    }
  }

  @Test
  void aFailedSaveKeepsThePreviousCheckpoint() throws IOException {
    Path file = folder.resolve("keep.safetensors");
    try (Model source = Model.of(1, 4); Arena arena = Arena.ofConfined()) {
      Checkpoints.save(file, source.parameters(), source.adam(), Map.of());
      byte[] before = Files.readAllBytes(file);
      List<Parameter> reserved = new ArrayList<>(source.parameters());
      reserved.add(Parameter.of("optimizer.x", Tensor.ones(arena, 1), Tensor.zeros(arena, 1)));
      var e = assertThrows(IllegalArgumentException.class,
          () -> Checkpoints.save(file, reserved, null, Map.of()));
      assertTrue(e.getMessage().contains("optimizer.x begins with optimizer."), e.getMessage());
      List<Parameter> twice = List.of(source.parameters().get(0), source.parameters().get(0));
      assertThrows(IllegalArgumentException.class,
          () -> Checkpoints.save(file, twice, null, Map.of()));
      assertArrayEquals(before, Files.readAllBytes(file));
      try (var files = Files.list(folder)) {
        assertEquals(List.of(file.getFileName()), files.map(Path::getFileName).toList());
      }
    }
  }
}
