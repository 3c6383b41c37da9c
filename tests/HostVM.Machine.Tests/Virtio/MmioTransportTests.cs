using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.MmioTransport;

namespace HostVM.Machine.Tests.Virtio;

public sealed class MmioTransportTests
{
    private const uint AckDriver = VirtioStatus.Acknowledge | VirtioStatus.Driver;

    [Theory]
    [InlineData(false, 2u)]
    [InlineData(true, 1u)]
    public void Identity_registers_say_virtio_version_device_and_vendor(bool legacy, uint version)
    {
        using var rig = new VirtioRig(new VirtioRng(), legacy);
        var d = rig.Driver;
        Assert.Equal(0x7472_6976u, d.Reg(RegMagic)); // "virt" little-endian
        Assert.Equal(version, d.Reg(RegVersion));
        Assert.Equal((uint)VirtioDeviceType.Entropy, d.Reg(RegDeviceId));
        Assert.Equal(VendorId, d.Reg(RegVendorId));
    }

    [Fact]
    public void Modern_offers_version_1_and_the_ring_features_in_the_high_word()
    {
        var balloon = new VirtioBalloon(deflateOnOom: true);
        using var rig = new VirtioRig(balloon);
        ulong f = rig.Driver.DeviceFeatures();
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx
            | VirtioBalloon.FeatureStatsQueue | VirtioBalloon.FeatureDeflateOnOom, f);
        rig.Driver.SetReg(RegDeviceFeaturesSel, 2);
        Assert.Equal(0u, rig.Driver.Reg(RegDeviceFeatures));
    }

    [Fact]
    public void Legacy_exposes_only_32_feature_bits_and_no_version_1()
    {
        using var rig = new VirtioRig(new VirtioRng(), legacy: true);
        ulong f = rig.Driver.DeviceFeatures();
        Assert.Equal(0UL, f >> 32);
        Assert.Equal(VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx, f);
    }

    [Fact]
    public void Modern_refuses_FEATURES_OK_without_VERSION_1_and_then_does_not_start()
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.SetReg(RegStatus, AckDriver);
        d.WriteDriverFeatures(VirtioFeatures.RingIndirectDesc);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk);
        Assert.Equal(AckDriver, d.Status);

        // A driver that ignores the refusal and goes on gets a device that does nothing.
        ulong desc = d.Allocate(1024), avail = d.Allocate(256), used = d.Allocate(1024);
        d.SetReg(RegQueueSel, 0);
        d.SetReg(RegQueueNum, 8);
        d.SetQueueAddresses(desc, avail, used);
        d.SetReg(RegQueueReady, 1);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.DriverOk);
        var q = new DriverQueue(rig.Ram, 0, 8, desc, avail, used);
        q.Add([], [d.Buffer(16)]);
        d.Kick(0);
        Thread.Sleep(20);
        Assert.Equal(0, q.PendingUsed);
    }

    [Fact]
    public void Modern_refuses_FEATURES_OK_with_bits_it_did_not_offer()
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.SetReg(RegStatus, AckDriver);
        d.WriteDriverFeatures(VirtioFeatures.Version1 | (1UL << 40));
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk);
        Assert.Equal(0u, d.Status & VirtioStatus.FeaturesOk);

        d.WriteDriverFeatures(VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk);
        Assert.Equal(AckDriver | VirtioStatus.FeaturesOk, d.Status);
    }

    [Fact]
    public void Legacy_refuses_bits_it_did_not_offer_even_in_the_high_word()
    {
        using var rig = new VirtioRig(new VirtioRng(), legacy: true);
        var d = rig.Driver;
        d.SetReg(RegStatus, AckDriver);
        d.WriteDriverFeatures(VirtioFeatures.Version1);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk);
        Assert.Equal(0u, d.Status & VirtioStatus.FeaturesOk);
    }

    [Fact]
    public void Driver_features_written_after_FEATURES_OK_are_ignored()
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.SetReg(RegStatus, AckDriver);
        d.WriteDriverFeatures(VirtioFeatures.Version1);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk);
        d.WriteDriverFeatures(VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx);

        // Were EVENT_IDX agreed, used_event = 5 would suppress the first interrupt.
        ulong desc = d.Allocate(1024), avail = d.Allocate(256), used = d.Allocate(1024);
        d.SetReg(RegQueueNum, 8);
        d.SetQueueAddresses(desc, avail, used);
        d.SetReg(RegQueueReady, 1);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
        var q = new DriverQueue(rig.Ram, 0, 8, desc, avail, used);
        q.SetUsedEvent(5);
        q.Add([], [d.Buffer(16)]);
        d.Kick(0);
        Assert.True(VirtioTestDriver.WaitUntil(() => q.PendingUsed == 1));
        Assert.True(rig.IrqLine);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void QueueNumMax_is_the_device_maximum_and_zero_past_the_last_queue(bool legacy)
    {
        var console = new VirtioConsole(_ => { });
        using var rig = new VirtioRig(console, legacy);
        var d = rig.Driver;
        d.SetReg(RegQueueSel, 1);
        Assert.Equal((uint)VirtioConsole.QueueSize, d.Reg(RegQueueNumMax));
        d.SetReg(RegQueueSel, 2);
        Assert.Equal(0u, d.Reg(RegQueueNumMax));
        d.SetReg(RegQueueSel, 0xffff_ffff);
        Assert.Equal(0u, d.Reg(RegQueueNumMax));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reset_clears_status_queues_and_interrupts_and_drops_the_line(bool legacy)
    {
        using var rig = new VirtioRig(new VirtioRng(), legacy);
        var d = rig.Driver;
        d.Initialize();
        d.Submit(0, [], [d.Buffer(32)]);
        Assert.True(rig.IrqLine);
        Assert.Equal(InterruptUsedBuffer, d.Reg(RegInterruptStatus));

        d.SetReg(RegStatus, 0);
        Assert.False(rig.IrqLine);
        Assert.Equal(0u, d.Status);
        Assert.Equal(0u, d.Reg(RegInterruptStatus));
        d.SetReg(RegQueueSel, 0);
        Assert.Equal(0u, d.Reg(legacy ? RegLegacyQueuePfn : RegQueueReady));

        // The old rings are dead: a request on them is not served, even with a kick.
        var old = d.Queue(0);
        old.Add([], [d.Buffer(16)]);
        d.Kick(0);
        Thread.Sleep(20);
        Assert.Equal(0, old.PendingUsed);

        // And the device comes back after a fresh probe.
        d.Initialize();
        Assert.Equal(16u, d.Submit(0, [], [d.Buffer(16)]).Written);
    }

    [Fact]
    public void Balloon_target_change_bumps_config_generation_and_raises_config_interrupt()
    {
        var balloon = new VirtioBalloon();
        using var rig = new VirtioRig(balloon);
        var d = rig.Driver;
        d.Initialize();
        d.AckInterrupts();
        uint generation = d.Reg(RegConfigGeneration);
        balloon.SetTarget(64UL << 20);
        Assert.NotEqual(generation, d.Reg(RegConfigGeneration));
        Assert.True(rig.IrqLine);
        Assert.Equal(InterruptConfigChanged, d.Reg(RegInterruptStatus));
        Assert.Equal((64UL << 20) / 4096, d.ReadConfig(0, 4));
    }

    [Fact]
    public void Config_change_before_DRIVER_OK_raises_no_interrupt()
    {
        var balloon = new VirtioBalloon();
        using var rig = new VirtioRig(balloon);
        uint generation = rig.Driver.Reg(RegConfigGeneration);
        balloon.SetTarget(1UL << 20);
        Assert.NotEqual(generation, rig.Driver.Reg(RegConfigGeneration));
        Assert.False(rig.IrqLine);
        Assert.Equal(0u, rig.Driver.Reg(RegInterruptStatus));
    }

    [Fact]
    public void InterruptAck_lowers_the_line_only_when_nothing_is_left_pending()
    {
        var balloon = new VirtioBalloon();
        using var rig = new VirtioRig(balloon);
        var d = rig.Driver;
        d.Initialize();
        d.Submit(0, [d.Buffer(4)], []);            // used buffer: bit 0
        balloon.SetTarget(4096);                   // config change: bit 1
        Assert.Equal(InterruptUsedBuffer | InterruptConfigChanged, d.Reg(RegInterruptStatus));
        d.SetReg(RegInterruptAck, InterruptUsedBuffer);
        Assert.True(rig.IrqLine);
        Assert.Equal(InterruptConfigChanged, d.Reg(RegInterruptStatus));
        d.SetReg(RegInterruptAck, InterruptConfigChanged);
        Assert.False(rig.IrqLine);
        Assert.Equal(0u, d.Reg(RegInterruptStatus));
    }

    [Theory]
    [InlineData(RegMagic, 1)]
    [InlineData(RegMagic, 2)]
    [InlineData(RegMagic, 8)]
    [InlineData(RegMagic + 1, 4)]
    [InlineData(RegVersion + 2, 4)]
    [InlineData(RegDeviceId, 2)]
    public void Odd_width_or_unaligned_register_reads_return_zero(ulong offset, int size)
    {
        using var rig = new VirtioRig(new VirtioRng());
        Assert.Equal(0UL, rig.Transport.Read(offset, size));
    }

    [Theory]
    [InlineData(RegStatus, 1)]
    [InlineData(RegStatus, 2)]
    [InlineData(RegStatus, 8)]
    [InlineData(RegStatus + 1, 4)]
    [InlineData(RegStatus - 2, 4)]
    public void Odd_width_or_unaligned_status_writes_are_ignored(ulong offset, int size)
    {
        using var rig = new VirtioRig(new VirtioRng());
        rig.Transport.Write(offset, size, 0x0101_0101_0101_0101);
        Assert.Equal(0u, rig.Driver.Status);
    }

    [Fact]
    public void Odd_width_queue_select_and_notify_are_ignored()
    {
        var console = new VirtioConsole(_ => { });
        using var rig = new VirtioRig(console);
        var d = rig.Driver;
        d.SetReg(RegQueueSel, 5);
        rig.Transport.Write(RegQueueSel, 2, 0);
        Assert.Equal(0u, d.Reg(RegQueueNumMax)); // still queue 5, which does not exist

        using var rng = new VirtioRig(new VirtioRng());
        rng.Driver.Initialize();
        var q = rng.Driver.Queue(0);
        q.Add([], [rng.Driver.Buffer(8)]);
        rng.Transport.Write(RegQueueNotify, 2, 0);
        rng.Transport.Write(RegQueueNotify, 8, 0);
        Thread.Sleep(10);
        Assert.Equal(0, q.PendingUsed);
        rng.Driver.Kick(0);
        Assert.Equal(1, q.PendingUsed); // virtio-rng serves on the kicking thread
    }

    [Fact]
    public void Queue_layout_cannot_change_while_the_queue_is_ready()
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.Initialize(queueSize: 16);
        d.SetReg(RegQueueSel, 0);
        d.SetReg(RegQueueNum, 4);
        d.SetQueueAddresses(0x1000, 0x2000, 0x3000);

        // Had the move taken, the queue would be 4 entries at addresses outside RAM.
        for (int i = 0; i < 20; i++)
        {
            d.Submit(0, [], [d.Buffer(8)]);
        }

        Assert.Null(rig.Transport.Error);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rings_outside_RAM_at_DRIVER_OK_set_DEVICE_NEEDS_RESET_with_a_reason(bool legacy)
    {
        using var rig = new VirtioRig(new VirtioRng(), legacy);
        var d = rig.Driver;
        d.SetReg(RegStatus, AckDriver);
        d.WriteDriverFeatures(legacy ? 0 : VirtioFeatures.Version1);
        uint status = legacy ? AckDriver : AckDriver | VirtioStatus.FeaturesOk;
        d.SetReg(RegStatus, status);
        d.SetReg(RegQueueSel, 0);
        d.SetReg(RegQueueNum, 16);
        if (legacy)
        {
            d.SetReg(RegLegacyGuestPageSize, 4096);
            d.SetReg(RegLegacyQueuePfn, (uint)(rig.Ram.EndAddress / 4096)); // first page past RAM
        }
        else
        {
            d.SetQueueAddresses(rig.Ram.BaseAddress, rig.Ram.BaseAddress + 0x1000, rig.Ram.EndAddress - 8); // used ring runs off the end
            d.SetReg(RegQueueReady, 1);
        }

        d.SetReg(RegStatus, status | VirtioStatus.DriverOk);
        Assert.Equal(status | VirtioStatus.DriverOk | VirtioStatus.DeviceNeedsReset, d.Status);
        Assert.Contains("outside guest RAM", rig.Transport.Error, StringComparison.Ordinal);
        Assert.True(rig.IrqLine);
        Assert.Equal(InterruptConfigChanged, d.Reg(RegInterruptStatus));

        // A reset clears it and a proper setup works.
        d.Initialize();
        Assert.Null(rig.Transport.Error);
        Assert.Equal(8u, d.Submit(0, [], [d.Buffer(8)]).Written);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(12u)]
    [InlineData(128u)] // virtio-rng's maximum is 64
    public void Bad_queue_size_at_DRIVER_OK_sets_DEVICE_NEEDS_RESET(uint size)
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.SetReg(RegStatus, AckDriver);
        d.WriteDriverFeatures(VirtioFeatures.Version1);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk);
        d.SetReg(RegQueueNum, size);
        d.SetQueueAddresses(rig.Ram.BaseAddress, rig.Ram.BaseAddress + 0x4000, rig.Ram.BaseAddress + 0x8000);
        d.SetReg(RegQueueReady, 1);
        d.SetReg(RegStatus, AckDriver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
        Assert.NotEqual(0u, d.Status & VirtioStatus.DeviceNeedsReset);
        Assert.NotNull(rig.Transport.Error);
    }

    [Fact]
    public void Legacy_queue_pfn_reads_back_and_places_the_used_ring_at_queue_align()
    {
        using var rig = new VirtioRig(new VirtioRng(), legacy: true);
        var d = rig.Driver;
        d.Initialize(queueSize: 16);
        d.SetReg(RegQueueSel, 0);
        Assert.Equal((uint)(d.Queue(0).DescAddress / 4096), d.Reg(RegLegacyQueuePfn));
        Assert.Equal(d.Queue(0).DescAddress + 4096, d.Queue(0).UsedAddress);
        Assert.Equal(16u, d.Submit(0, [], [d.Buffer(16)]).Written); // the device used the ring where the driver looks
    }

    [Fact]
    public void Config_space_reads_past_its_end_return_zero_and_writes_there_are_ignored()
    {
        var balloon = new VirtioBalloon();
        using var rig = new VirtioRig(balloon);
        balloon.SetTarget(0x1234_5000);
        Assert.Equal(0x12345UL, rig.Driver.ReadConfig(0, 4));
        Assert.Equal(0UL, rig.Driver.ReadConfig(6, 4)); // straddles the 8-byte end
        Assert.Equal(0UL, rig.Driver.ReadConfig(8, 1));
        rig.Driver.WriteConfig(6, 4, 0xffff_ffff);
        Assert.Equal(0u, balloon.ActualPages);
    }
}
