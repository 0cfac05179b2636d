package io.veggur.host.vm;

import java.nio.file.Path;

/** What {@code veggur vm info} reports. {@code state} is lower-case: starting, running, stopping, stopped, failed. */
public record VmInfo(String name, String id, String state, Path socket, Path console, long memory, int vcpus,
                     String accel, String cpu, long supervisorPid, long qemuPid, String error) {}
