package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.protocol.Capability;
import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Event;
import io.veggur.protocol.MemoryRegion;
import io.veggur.protocol.Register;
import io.veggur.protocol.Request.PhysicalRange;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.VcpuRegisters;
import io.veggur.vmi.VmiException;
import io.veggur.vmi.memory.MappedPhysicalMemory;
import io.veggur.vmi.memory.OutOfRangeException;
import io.veggur.vmi.memory.PhysicalMemory;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The introspection socket of a real test guest, checked against what the guest itself reports. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class IntrospectionSocketIT {
    private TestVm vm;

    @BeforeAll
    void boot() throws Exception {
        vm = TestVm.boot("socket-it", spec -> spec.withVcpus(2));
    }

    @AfterAll
    void stop() throws Exception {
        if (vm != null) {
            vm.close();
        }
    }

    @Test
    void handshake_describesTheVm() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            assertThat(session.vmId()).isEqualTo(vm.info.id());
            assertThat(session.vcpuCount()).isEqualTo(2);
            assertThat(session.memoryMap().totalSize()).isEqualTo(256L << 20);
            assertThat(session.capabilities()).contains(Capability.READ_PHYSICAL, Capability.MEMORY_FD)
                    .doesNotContain(Capability.WRITE_PHYSICAL);
        }
    }

    @Test
    void markerPage_readBothWays_equalsTheGuestsOwnBytes() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            byte[] expected = vm.marker.expectedMarkerPage();
            assertThat(session.remotePhysicalMemory().read(vm.marker.markerAddress(), 4096)).isEqualTo(expected);
            PhysicalMemory mapped = session.physicalMemory();
            assertThat(mapped).isInstanceOf(MappedPhysicalMemory.class);
            assertThat(mapped.read(vm.marker.markerAddress(), 4096)).isEqualTo(expected);
        }
    }

    @Test
    void readsCrossingPages_inOneBatch_equalTheGuestsBytes() throws Exception {
        byte[] expected = vm.marker.expectedMarkerPage();
        long base = vm.marker.markerAddress();
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            byte[] batch = new byte[100 + 8 + 4000];
            session.remotePhysicalMemory().readBatch(List.of(
                    new PhysicalRange(base + 3000, 100), new PhysicalRange(base + 8, 8), new PhysicalRange(base + 96, 4000)), batch);
            assertThat(java.util.Arrays.copyOfRange(batch, 0, 100)).isEqualTo(java.util.Arrays.copyOfRange(expected, 3000, 3100));
            assertThat(java.util.Arrays.copyOfRange(batch, 100, 108)).isEqualTo(java.util.Arrays.copyOfRange(expected, 8, 16));
            assertThat(java.util.Arrays.copyOfRange(batch, 108, 4108)).isEqualTo(java.util.Arrays.copyOfRange(expected, 96, 4096));
            // A 40 MiB read spans several protocol requests and many pages.
            byte[] big = session.remotePhysicalMemory().read(0, 40 << 20);
            assertThat(big).hasSize(40 << 20);
        }
    }

    @Test
    void registers_ofBothVcpus_areThoseOfARunningLongModeKernel() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            for (int vcpu = 0; vcpu < 2; vcpu++) {
                VcpuRegisters registers = session.registers(vcpu);
                assertThat(registers.get(Register.CR0) & (1L << 31)).as("CR0.PG").isNotZero();
                assertThat(registers.get(Register.CR0) & 1L).as("CR0.PE").isNotZero();
                assertThat(registers.get(Register.EFER) & (1L << 10)).as("EFER.LMA").isNotZero();
                long pageTableRoot = registers.get(Register.CR3) & 0x000f_ffff_ffff_f000L;
                assertThat(session.memoryMap().regionOf(pageTableRoot, 4096)).as("CR3 inside RAM").isNotNull();
                assertThat(registers.values()).containsKeys(Register.RIP, Register.RSP, Register.FS_BASE,
                        Register.GS_BASE, Register.KERNEL_GS_BASE, Register.CR2, Register.CR4, Register.CS);
            }
            assertThatThrownBy(() -> session.registers(2)).isInstanceOf(VmiException.class)
                    .extracting(e -> ((VmiException) e).code()).isEqualTo(ErrorCode.OUT_OF_RANGE);
        }
    }

    @Test
    void pause_stopsTheGuest_andResumeLetsItRun() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            BlockingQueue<Event> events = new LinkedBlockingQueue<>();
            session.subscribeVmEvents(events::add);
            PhysicalMemory memory = session.physicalMemory();
            long counter = vm.marker.counterAddress();
            awaitCounterMoves(memory, counter);

            session.pause();
            long atPause = memory.readLong(counter);
            Thread.sleep(500);
            assertThat(memory.readLong(counter)).as("counter while paused").isEqualTo(atPause);
            assertThat(events.poll(5, TimeUnit.SECONDS)).isEqualTo(new Event.VmStateChanged(Event.VmState.PAUSED, "client-pause"));

            session.resume();
            assertThat(events.poll(5, TimeUnit.SECONDS)).isEqualTo(new Event.VmStateChanged(Event.VmState.RUNNING, "client-resume"));
            awaitCounterMoves(memory, counter);
        }
    }

    @Test
    void clientThatDiesWhilePausing_leavesTheGuestRunning() throws Exception {
        IntrospectionSession dying = IntrospectionSession.connect(vm.socket());
        dying.pause();
        dying.close();
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            awaitCounterMoves(session.physicalMemory(), vm.marker.counterAddress());
        }
    }

    @Test
    void descriptorReads_equalSocketReads_acrossRam() throws Exception {
        long seed = System.nanoTime();
        System.out.println("descriptorReads_equalSocketReads_acrossRam seed=" + seed);
        Random random = new Random(seed);
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            PhysicalMemory mapped = session.physicalMemory();
            PhysicalMemory remote = session.remotePhysicalMemory();
            session.pause();
            try {
                for (int i = 0; i < 200; i++) {
                    MemoryRegion region = session.memoryMap().regions().get(random.nextInt(session.memoryMap().regions().size()));
                    int length = 1 + random.nextInt(i % 2 == 0 ? 64 : 70_000);
                    long address = region.guestPhysical() + (long) (random.nextDouble() * (region.size() - length));
                    assertThat(mapped.read(address, length)).as("read 0x%x+%d (seed %d)", address, length, seed)
                            .isEqualTo(remote.read(address, length));
                }
            } finally {
                session.resume();
            }
        }
    }

    @Test
    void readsBeyondRam_andWritesByDefault_areRefused() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            long end = session.memoryMap().regions().getLast().end();
            assertThatThrownBy(() -> session.remotePhysicalMemory().read(end - 4, 8)).isInstanceOf(OutOfRangeException.class);
            assertThatThrownBy(() -> session.physicalMemory().read(end, 1)).isInstanceOf(OutOfRangeException.class);
            assertThatThrownBy(() -> session.writePhysical(vm.marker.markerAddress(), new byte[8]))
                    .isInstanceOf(VmiException.class)
                    .extracting(e -> ((VmiException) e).code()).isEqualTo(ErrorCode.PERMISSION_DENIED);
            assertThat(session.physicalMemory().read(vm.marker.markerAddress(), 4096)).isEqualTo(vm.marker.expectedMarkerPage());
        }
    }

    static void awaitCounterMoves(PhysicalMemory memory, long counter) throws Exception {
        long before = memory.readLong(counter);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            if (memory.readLong(counter) > before) {
                return;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("the guest's counter did not move from " + before + " within 10 s");
    }
}
