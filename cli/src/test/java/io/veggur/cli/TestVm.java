package io.veggur.cli;

import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A real test guest under QEMU (TCG on these machines), in a throw-away Veggur home, booted until its init reports
 * ready. Closing stops the VM and deletes the home.
 */
final class TestVm implements AutoCloseable {
    static final Duration BOOT_TIMEOUT = Duration.ofSeconds(120);

    final Path home;
    final VmManager manager;
    final VmInfo info;
    final GuestConsole console;
    final TestGuestMarker marker;

    private TestVm(Path home, VmManager manager, VmInfo info, GuestConsole console, TestGuestMarker marker) {
        this.home = home;
        this.manager = manager;
        this.info = info;
        this.console = console;
        this.marker = marker;
    }

    static TestVm boot(String name, UnaryOperator<VmSpec> customize) throws Exception {
        Path home = Files.createTempDirectory("veggur-it-");
        VmManager manager = new VmManager(new VeggurHome(home));
        VmInfo info = manager.start(customize.apply(VmSpec.builtinGuest(name).withAppend(null)));
        try {
            GuestConsole console = new GuestConsole(manager.directory(name));
            console.awaitLine(Pattern.compile("VEGGUR-READY"), BOOT_TIMEOUT);
            TestGuestMarker marker = TestGuestMarker.await(console, BOOT_TIMEOUT);
            return new TestVm(home, manager, info, console, marker);
        } catch (Exception e) {
            manager.stop(name);
            throw e;
        }
    }

    String socket() {
        return info.socket();
    }

    @Override
    public void close() throws Exception {
        try {
            manager.stop(info.name());
        } finally {
            deleteTree(home);
        }
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }
}
