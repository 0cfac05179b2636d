package io.veggur.host.qemu;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;

/**
 * The register file as the gdbstub's target description declares it, in register-number order, which is also the
 * order of the {@code g} packet: each register occupies {@code bitSize / 4} hex digits there, little-endian, right
 * after the register with the next lower number. A stub may send a shorter {@code g} packet than the layout covers
 * (QEMU sends only its core registers); registers past its end are simply absent.
 */
public final class RegisterLayout {
    /**
     * One register.
     *
     * @param hexOffset where the register starts in the {@code g} packet's hex string
     */
    public record Register(String name, int bitSize, int regnum, int hexOffset) {
        public int byteSize() {
            return bitSize / 8;
        }
    }

    private final List<Register> registers;
    private final Map<String, Register> byName = new HashMap<>();

    /** {@code registers} must be in register-number order with consistent offsets and unique names. */
    RegisterLayout(List<Register> registers) {
        this.registers = List.copyOf(registers);
        for (Register register : this.registers) {
            if (byName.put(register.name(), register) != null) {
                throw new IllegalArgumentException("duplicate register " + register.name());
            }
        }
    }

    public List<Register> registers() {
        return registers;
    }

    public Optional<Register> find(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** Start of a register in the {@code g} packet's hex string. */
    public int offsetOf(String name) {
        Register register = byName.get(name);
        if (register == null) {
            throw new NoSuchElementException("no register '" + name + "' in the target description");
        }
        return register.hexOffset();
    }

    @Override
    public String toString() {
        return "RegisterLayout" + registers.stream().map(r -> r.name() + ":" + r.bitSize()).toList();
    }
}
