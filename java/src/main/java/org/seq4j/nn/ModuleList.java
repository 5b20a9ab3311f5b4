package org.seq4j.nn;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Modules held in a list, as PyTorch's {@code nn.ModuleList}: the parts are named {@code 0},
 * {@code 1}, … so that a stack registered as {@code layers} has the parameters {@code
 * layers.0.self_attn.in_proj_weight}, as in PyTorch's state dict. It has no forward of its own;
 * closing it closes its modules.
 *
 * @param <M> the type of the modules
 */
public final class ModuleList<M extends Module> extends Module implements Iterable<M> {
  private final List<M> modules = new ArrayList<>();

  /**
   * Holds {@code modules} in order; the list owns them (closing it closes them).
   *
   * @throws NullPointerException naming the first null module
   */
  public ModuleList(List<? extends M> modules) {
    for (int i = 0; i < modules.size(); i++) {
      M module = modules.get(i);
      if (module == null) {
        throw new NullPointerException("modules[" + i + "]");
      }
      register(Integer.toString(i), module);
      this.modules.add(module);
    }
  }

  /** The number of modules. */
  public int size() {
    return modules.size();
  }

  /** The module at {@code index}. */
  public M get(int index) {
    return modules.get(index);
  }

  /** The modules in order. */
  @Override
  public Iterator<M> iterator() {
    return java.util.Collections.unmodifiableList(modules).iterator();
  }
}
