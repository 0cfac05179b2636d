package io.veggur.vmi;

import io.veggur.protocol.Register;
import java.util.Map;

/** A snapshot of one vCPU's registers. Registers the hypervisor did not report are absent. */
public record VcpuRegisters(int vcpu, Map<Register, Long> values) {
    public VcpuRegisters {
        values = Map.copyOf(values);
    }

    public long get(Register register) {
        Long value = values.get(register);
        if (value == null) {
            throw new IllegalStateException("register " + register.displayName() + " was not reported for vCPU " + vcpu);
        }
        return value;
    }
}
