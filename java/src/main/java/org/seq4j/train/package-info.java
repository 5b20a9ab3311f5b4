/**
 * Training: {@link org.seq4j.train.Losses} with their gradients, optimizers ({@link
 * org.seq4j.train.Sgd}, {@link org.seq4j.train.Adam}), {@link org.seq4j.train.LearningRateSchedule
 * schedules}, {@link org.seq4j.train.GradientClipping clipping}, {@link
 * org.seq4j.train.Initializers initialisers}, {@link org.seq4j.train.GradientFlow gradient-flow
 * diagnostics} for backpropagation through time, and {@link org.seq4j.train.Checkpoints
 * checkpoints}.
 *
 * <pre>{@code
 * try (Adam adam = Adam.adamW(lstm.parameters()).learningRate(1e-3).build()) {
 *   Lstm.Result result = lstm.forward(arena, x, null, null, Mode.TRAINING);
 *   float loss = Losses.meanSquaredError(result.output(), target, gradOutput);
 *   adam.zeroGrad();
 *   lstm.backward(arena, result.context(), gradOutput, null);
 *   double norm = GradientClipping.clipByGlobalNorm(adam.parameters(), 1.0);
 *   adam.step();
 * }
 * }</pre>
 */
package org.seq4j.train;
