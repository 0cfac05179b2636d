package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.host.vm.SupervisorControl;
import io.veggur.protocol.Capability;
import io.veggur.protocol.ErrorCode;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.VmiException;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Role-bound sockets opened through the supervisor's control channel: the socket, not the client, decides what its
 * holder may do, and closing it (a revoked grant) ends its live sessions.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EnvironmentSocketIT {
    private TestVm vm;
    private SupervisorControl control;

    @BeforeAll
    void boot() throws Exception {
        vm = TestVm.boot("env-it", spec -> spec);
        control = new SupervisorControl(vm.manager.directory("env-it"));
    }

    @AfterAll
    void stop() throws Exception {
        if (vm != null) {
            vm.close();
        }
    }

    @Test
    void readSocket_readsButCannotPauseOrWrite_evenWithAHandMadeClient() throws Exception {
        Path socket = control.open("reader", vm.home.resolve("envs/reader"), "read", true);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket.getParent()))).isEqualTo("rwx------");
        try (IntrospectionSession session = IntrospectionSession.connect(socket.toString())) {
            assertThat(session.capabilities()).contains(Capability.READ_PHYSICAL, Capability.MEMORY_FD)
                    .doesNotContain(Capability.PAUSE_RESUME, Capability.WRITE_PHYSICAL);
            assertThat(session.physicalMemory().read(vm.marker.markerAddress(), 4096)).isEqualTo(vm.marker.expectedMarkerPage());
            assertDenied(session::pause);
            assertDenied(() -> session.writePhysical(vm.marker.markerAddress(), new byte[8]));
        } finally {
            control.close("reader");
        }
    }

    @Test
    void traceSocket_pausesButCannotWrite_whenTheVmDisallowsWrites() throws Exception {
        Path socket = control.open("tracer", vm.home.resolve("envs/tracer"), "write", true);
        try (IntrospectionSession tracer = IntrospectionSession.connect(socket.toString());
             IntrospectionSession owner = IntrospectionSession.connect(vm.socket())) {
            assertThat(tracer.capabilities()).as("write is capped at the VM's trace ceiling")
                    .contains(Capability.PAUSE_RESUME).doesNotContain(Capability.WRITE_PHYSICAL);
            PhysicalMemory memory = owner.physicalMemory();
            tracer.pause();
            owner.resume();
            long held = memory.readLong(vm.marker.counterAddress());
            Thread.sleep(300);
            assertThat(memory.readLong(vm.marker.counterAddress())).as("another client's resume does not lift a pause it does not hold")
                    .isEqualTo(held);
            tracer.resume();
            IntrospectionSocketIT.awaitCounterMoves(memory, vm.marker.counterAddress());
        } finally {
            control.close("tracer");
        }
    }

    @Test
    void closingASocket_endsItsLiveSessions_andRemovesIt() throws Exception {
        Path socket = control.open("revoked", vm.home.resolve("envs/revoked"), "read", true);
        IntrospectionSession session = IntrospectionSession.connect(socket.toString());
        assertThat(session.remotePhysicalMemory().read(vm.marker.markerAddress(), 8)).hasSize(8);
        assertThat(control.list()).anySatisfy(entry -> assertThat(entry.path("id").asText()).isEqualTo("revoked"));

        assertThat(control.close("revoked")).isTrue();
        assertThatThrownBy(() -> session.remotePhysicalMemory().read(vm.marker.markerAddress(), 8)).isInstanceOf(IOException.class);
        assertThat(socket).doesNotExist();
        session.close();
        try (IntrospectionSession owner = IntrospectionSession.connect(vm.socket())) {
            assertThat(owner.remotePhysicalMemory().read(vm.marker.markerAddress(), 4096)).isEqualTo(vm.marker.expectedMarkerPage());
        }
    }

    @Test
    void badControlRequests_areRefusedWithReasons() {
        assertThatThrownBy(() -> control.open("../escape", vm.home.resolve("envs/x"), "read", true)).hasMessageContaining("invalid socket id");
        assertThatThrownBy(() -> control.open("x", vm.home.resolve("envs/x"), "root", true)).hasMessageContaining("unknown role");
    }

    private interface Call {
        void run() throws Exception;
    }

    private static void assertDenied(Call call) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(VmiException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.PERMISSION_DENIED));
    }
}
