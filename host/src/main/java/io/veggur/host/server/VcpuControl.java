package io.veggur.host.server;

import io.veggur.protocol.Register;
import java.io.IOException;
import java.util.Map;

/** What the introspection server needs from the hypervisor's vCPU side. Implementations are thread-safe. */
public interface VcpuControl {
    int vcpuCount();

    /** Registers of one vCPU; works whether the VM runs (it is briefly stopped) or is paused. */
    Map<Register, Long> registers(int vcpu) throws IOException;

    void pause() throws IOException;

    void resume() throws IOException;
}
