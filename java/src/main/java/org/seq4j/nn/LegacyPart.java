package org.seq4j.nn;

import java.util.List;

/**
 * INTERIM, to be deleted once {@link Linear} and {@link LayerNorm} are {@link Module}s (the lead's
 * change on main): presents such a part as a module under its own parameter names ({@code
 * weight}, {@code bias}), so the Transformer layers have PyTorch's dotted names and order now.
 * Each use is marked {@code SWITCH-ON} with the one-line {@code register(name, part)} that
 * replaces it; closing it closes the part.
 */
final class LegacyPart extends Module {
  private final AutoCloseable part;

  private LegacyPart(List<Parameter> parameters, AutoCloseable part) {
    this.part = part;
    for (Parameter p : parameters) {
      registerParameter(Parameter.prefixed("", List.of(p)).get(0));
    }
  }

  static LegacyPart of(Linear linear) {
    return new LegacyPart(linear.parameters(), linear);
  }

  static LegacyPart of(LayerNorm norm) {
    return new LegacyPart(norm.parameters(), norm);
  }

  @Override
  protected void closeResources() {
    try {
      part.close();
    } catch (Exception e) {
      throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
    }
  }
}
