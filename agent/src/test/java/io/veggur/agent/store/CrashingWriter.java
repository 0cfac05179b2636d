package io.veggur.agent.store;

import io.veggur.host.server.Role;
import java.nio.file.Path;

/**
 * Run in a child JVM by {@link CrashSafetyTest}: writes to the store at args[0] as fast as it can, printing
 * "committed N" after step N has returned, until it is killed. Each step is several transactions.
 */
public final class CrashingWriter {
    private CrashingWriter() {}

    public static void main(String[] args) throws Exception {
        AgentStore store = AgentStore.open(Path.of(args[0]));
        Tenant owner = store.createTenant("owner").tenant();
        System.out.println("started");
        for (int step = 0; ; step++) {
            Tenant tenant = store.createTenant("t" + step).tenant();
            store.createVm(owner, "vm" + step, 256, 1);
            store.grant(owner, "vm" + step, tenant.name(), Role.READ);
            System.out.println("committed " + step);
            System.out.flush();
        }
    }
}
