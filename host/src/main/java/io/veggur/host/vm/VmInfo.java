package io.veggur.host.vm;

/**
 * What {@code veggur vm info} reports. {@code state} is lower-case: starting, running, stopping, stopped, failed.
 * {@code socket} is the introspection socket, {@code console} the serial console log.
 */
public record VmInfo(String name, String id, String state, String socket, String console, long memory, int vcpus,
                     String accel, String cpu, long supervisorPid, long qemuPid, String error) {}
