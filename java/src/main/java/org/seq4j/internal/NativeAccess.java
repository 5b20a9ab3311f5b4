package org.seq4j.internal;

/** Whether the JVM lets seq4j call native code, and the flag that enables it. */
public final class NativeAccess {
  private NativeAccess() {}

  /** True when native access is enabled for seq4j's module (or the class path). */
  public static boolean enabled() {
    return NativeAccess.class.getModule().isNativeAccessEnabled();
  }

  /** The exact command-line flag that enables native access for seq4j as it is deployed. */
  public static String flag() {
    Module module = NativeAccess.class.getModule();
    return "--enable-native-access=" + (module.isNamed() ? module.getName() : "ALL-UNNAMED");
  }
}
