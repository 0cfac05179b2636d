package io.veggur.vmi.os.linux;

/**
 * A loaded kernel module.
 *
 * @param size what /proc/modules shows: the bytes of all the module's memory (core and, while initialising, init)
 * @param base the start of its code
 */
public record LinuxModule(String name, long base, long size, long address) {}
