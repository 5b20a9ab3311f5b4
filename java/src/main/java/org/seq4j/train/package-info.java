/**
 * Training: {@link org.seq4j.train.Losses} with their gradients, optimizers ({@link
 * org.seq4j.train.Sgd}, {@link org.seq4j.train.Adam}, or your own {@link
 * org.seq4j.train.Optimizer}) over {@link org.seq4j.train.ParameterGroup parameter groups},
 * {@link org.seq4j.train.Scheduler schedulers} and {@link org.seq4j.train.LearningRateSchedule
 * schedules}, {@link org.seq4j.train.GradientClipping clipping}, the {@link
 * org.seq4j.train.GradientChecks NaN/Inf guard}, {@link org.seq4j.train.Initializers
 * initialisers}, {@link org.seq4j.train.GradientFlow gradient-flow diagnostics} for
 * backpropagation through time, {@link org.seq4j.train.Checkpoints checkpoints}, and the {@link
 * org.seq4j.train.Trainer} loop that ties them together.
 *
 * <pre>{@code
 * try (Adam adam = Adam.adamW().learningRate(1e-3)
 *     .group(model.lstm.parameters()).group(model.head.parameters(), g -> g.weightDecay(0))
 *     .build()) {
 *   Scheduler schedule = Scheduler.of(adam, Scheduler.Rule.warmupCosine(100, 2_000, 0.1));
 *   History history = Trainer.builder(model, adam,
 *           (m, b) -> Losses.mseLoss(m.forward(b.x()), b.y()))          // a scalar, recorded
 *       .epochs(20).clipGradNorm(1.0).scheduler(schedule).requireFiniteGradients(true)
 *       .validation(validationBatches)
 *       .earlyStopping(new Trainer.EarlyStopping(3, 1e-4, true))
 *       .checkpoints(Path.of("runs/lstm"), 5, true)
 *       .build().fit(trainingBatches);                                // batches close their arenas
 * }
 * }</pre>
 */
package org.seq4j.train;
