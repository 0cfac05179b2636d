package io.veggur.bench;

import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import io.veggur.vmi.IntrospectionSession;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** The built-in test guest booted for a benchmark trial in a throw-away Veggur home, with a session to its socket. */
final class BenchGuest implements AutoCloseable {
    private static final String NAME = "bench";

    private final Path home;
    private final VmManager manager;
    final IntrospectionSession session;

    BenchGuest() throws Exception {
        home = Files.createTempDirectory("veggur-bench-");
        manager = new VmManager(new VeggurHome(home));
        VmInfo vm = manager.start(VmSpec.builtinGuest(NAME));
        new GuestConsole(manager.directory(NAME)).awaitLine(Pattern.compile("VEGGUR-READY"), Duration.ofSeconds(120));
        session = IntrospectionSession.connect(vm.socket());
    }

    Path home() {
        return home;
    }

    @Override
    public void close() throws Exception {
        session.close();
        manager.stop(NAME);
        try (Stream<Path> paths = Files.walk(home)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
