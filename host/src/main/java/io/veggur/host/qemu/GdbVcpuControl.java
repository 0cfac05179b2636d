package io.veggur.host.qemu;

import io.veggur.host.server.VcpuControl;
import io.veggur.protocol.Register;
import java.io.IOException;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;

/**
 * vCPU control through QEMU's gdbstub. Register names come from the stub's target description and are mapped onto
 * our {@link Register} set by name; the few names that differ are aliased here.
 */
public final class GdbVcpuControl implements VcpuControl {
    private static final Map<String, Register> ALIASES = Map.of(
            "eflags", Register.RFLAGS,
            "k_gs_base", Register.KERNEL_GS_BASE);

    private final GdbStub stub;

    public GdbVcpuControl(GdbStub stub) {
        this.stub = stub;
    }

    @Override
    public int vcpuCount() {
        return stub.vcpuCount();
    }

    @Override
    public Map<Register, Long> registers(int vcpu) throws IOException {
        Map<String, Long> raw = stub.whileStopped(() -> stub.readRegisters(vcpu));
        Map<Register, Long> values = new EnumMap<>(Register.class);
        raw.forEach((name, value) -> {
            Register register = toRegister(name);
            if (register != null) {
                values.put(register, value);
            }
        });
        return values;
    }

    private static Register toRegister(String gdbName) {
        Register alias = ALIASES.get(gdbName);
        if (alias != null) {
            return alias;
        }
        try {
            return Register.valueOf(gdbName.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException notOneOfOurs) {
            return null;
        }
    }

    @Override
    public void pause() throws IOException {
        stub.stop();
    }

    @Override
    public void resume() throws IOException {
        stub.resume();
    }
}
