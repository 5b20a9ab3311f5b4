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
}
