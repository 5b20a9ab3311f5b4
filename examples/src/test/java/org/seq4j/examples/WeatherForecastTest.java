package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The default demo, shortened: its data loads, its loss falls, its model saves and predicts. */
class WeatherForecastTest {
  @TempDir Path folder;

  @Test
  void theBundledDataIsTheSeattleTable() throws Exception {
    List<WeatherForecast.Day> days = WeatherForecast.load();
    assertEquals(1461, days.size());
    assertEquals(LocalDate.of(2012, 1, 1), days.get(0).date());
    assertEquals(12.8, days.get(0).tempMax());
  }

  @Test
  void trainingLowersTheLossOfBothModels() throws Exception {
    List<WeatherForecast.Day> days = WeatherForecast.load();
    LocalDate split = LocalDate.of(2015, 1, 1);
    var norm = WeatherForecast.Normalization.of(
        days.stream().filter(d -> d.date().isBefore(split)).toList());
    var train = WeatherForecast.windows(days, norm, LocalDate.MIN, split);
    var test = WeatherForecast.windows(days, norm, split, LocalDate.MAX);
    for (String name : List.of("lstm", "rnn")) {
      try (WeatherForecast.Model model = new WeatherForecast.Model(name, 1)) {
        var run = WeatherForecast.train(model, train, test, norm, 4, true);
        double[] loss = run.lossPerEpoch();
        assertTrue(loss[loss.length - 1] < 0.9 * loss[0],
            name + " loss should fall: " + java.util.Arrays.toString(loss));
        assertTrue(run.testErrorCelsius() < 4, name + " error " + run.testErrorCelsius());
        assertEquals(WeatherForecast.WINDOW, run.gradientNormPerStep().length);
      }
    }
  }

  @Test
  void theFullDemoWritesPlotsAndAModelThatPredicts() throws Exception {
    WeatherForecast.run(2, folder);
    for (String file : List.of("weather-loss.png", "weather-gradient-flow.png",
        "weather-gradient-norm.png", "weather-lstm.safetensors")) {
      assertTrue(Files.size(folder.resolve(file)) > 100, file);
    }
    double forecast = WeatherForecast.predict(folder.resolve("weather-lstm.safetensors"));
    assertTrue(forecast > -20 && forecast < 45, "a plausible temperature: " + forecast);
  }
}
