package io.veggur.host.qemu;

import io.veggur.host.server.DebugControl;
import io.veggur.host.server.VcpuControl;
import io.veggur.protocol.Register;
import java.io.IOException;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * vCPU control through QEMU's gdbstub. Register names come from the stub's target description and are mapped onto
 * our {@link Register} set by name; the few names that differ are aliased here.
 */
public final class GdbVcpuControl implements VcpuControl, DebugControl {
    private static final Map<String, Register> ALIASES = Map.of(
            "eflags", Register.RFLAGS,
            "k_gs_base", Register.KERNEL_GS_BASE);

    private final GdbStub stub;
    private final boolean tcg;

    /** {@code tcg}: whether QEMU runs under TCG, where breakpoints are kept by the emulator, not in guest memory. */
    public GdbVcpuControl(GdbStub stub, boolean tcg) {
        this.stub = stub;
        this.tcg = tcg;
    }

    @Override
    public int vcpuCount() {
        return stub.vcpuCount();
    }

    @Override
    public Map<Register, Long> registers(int vcpu) throws IOException {
        return ours(stub.whileStopped(() -> stub.readRegisters(vcpu)));
    }

    @Override
    public Map<Register, Long> stoppedRegisters(int vcpu) throws IOException {
        return ours(stub.readRegisters(vcpu));
    }

    @Override
    public void onTrap(IntConsumer listener) {
        stub.addStopListener(reply -> {
            if (reply.signal() == StopReply.SIGTRAP && reply.vcpuIndex().isPresent()) {
                listener.accept(reply.vcpuIndex().getAsInt());
            }
        });
    }

    @Override
    public boolean breakpointsInvisible() {
        return tcg;
    }

    @Override
    public void insertBreakpoint(long guestVirtual) throws IOException {
        stub.insertBreakpoint(guestVirtual);
    }

    @Override
    public void removeBreakpoint(long guestVirtual) throws IOException {
        stub.removeBreakpoint(guestVirtual);
    }

    @Override
    public void writeRegisters(int vcpu, Map<Register, Long> values) throws IOException {
        Map<String, Long> named = new LinkedHashMap<>();
        values.forEach((register, value) -> named.put(gdbName(register), value));
        stub.writeRegisters(vcpu, named);
    }

    @Override
    public void step(int vcpu) throws IOException {
        stub.step(vcpu);
    }

    @Override
    public void releaseTrap(boolean resume) throws IOException {
        stub.releaseTrap(resume);
    }

    private static String gdbName(Register register) {
        for (Map.Entry<String, Register> alias : ALIASES.entrySet()) {
            if (alias.getValue() == register) {
                return alias.getKey();
            }
        }
        return register.name().toLowerCase(Locale.ROOT);
    }

    private static Map<Register, Long> ours(Map<String, Long> raw) {
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
