using System.Buffers.Binary;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

public sealed class VirtioBalloonTests : IDisposable
{
    private readonly VirtioBalloon _balloon = new();
    private readonly VirtioRig _rig;

    public VirtioBalloonTests() => _rig = new VirtioRig(_balloon);

    public void Dispose() => _rig.Dispose();

    private GuestBuffer Pfns(params ulong[] addresses)
    {
        var b = _rig.Driver.Buffer((uint)(4 * addresses.Length), 4);
        for (int i = 0; i < addresses.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_rig.Ram.GetSpan(b.Address + (4UL * (ulong)i), 4), (uint)(addresses[i] >> 12));
        }

        return b;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Inflate_gives_the_listed_pages_back_and_they_read_zero(bool indirect)
    {
        var d = _rig.Driver;
        d.Initialize();
        var victim = d.Buffer(4096, 4096);
        var keeper = d.Buffer(4096, 4096);
        d.Fill(victim, Enumerable.Repeat((byte)0xa5, 4096).ToArray());
        d.Fill(keeper, Enumerable.Repeat((byte)0x5a, 4096).ToArray());
        d.Submit(0, [Pfns(victim.Address, 0x1000, _rig.Ram.EndAddress)], [], indirect); // the last two are outside RAM
        Assert.All(d.Contents(victim), x => Assert.Equal(0, x));
        Assert.All(d.Contents(keeper), x => Assert.Equal(0x5a, x));
        Assert.Equal(1, _balloon.PagesReturned);
    }

    [Fact]
    public void An_inflate_request_of_almost_4_GiB_of_PFNs_completes_promptly()
    {
        // 1024 indirect descriptors that each cover all 4 MiB of RAM (the last 8 bytes short): a readable
        // length of 0xffff_fff8, just under the chain limit. Walking it in 4 KiB steps with a 32-bit
        // offset used to wrap round and spin for ever on the device thread (and block reset behind it).
        var d = _rig.Driver;
        d.Initialize();
        var keeper = d.Buffer(4096, 4096);
        d.Fill(keeper, Enumerable.Repeat((byte)0x5a, 4096).ToArray());
        const int entries = 1024;
        ulong table = d.Allocate(entries * 16UL, 16);
        ulong ram = _rig.Ram.Size;
        for (int i = 0; i < entries; i++)
        {
            uint length = (uint)(i == entries - 1 ? ram - 8 : ram);
            DriverQueue.WriteDescriptorAt(_rig.Ram, table + (16UL * (ulong)i), _rig.Ram.BaseAddress, length, i == entries - 1 ? (ushort)0 : Virtqueue.DescNext, (ushort)(i + 1));
        }

        var q = d.Queue(0);
        q.WriteDescriptor(0, table, entries * 16, Virtqueue.DescIndirect, 0);
        q.Publish(0);
        d.Kick(0);
        d.WaitUsed(0, TimeSpan.FromSeconds(5));
        Assert.Null(_rig.Transport.Error);
        Assert.All(d.Contents(keeper), x => Assert.Equal(0x5a, x)); // PFN 0x5a5a5a5a is not in RAM

        d.Reset(); // must not wait behind a busy device thread
        d.Initialize();
        d.Submit(1, [Pfns(0x1000)], []);
    }

    [Fact]
    public void Deflate_leaves_pages_alone()
    {
        var d = _rig.Driver;
        d.Initialize();
        var page = d.Buffer(4096, 4096);
        d.Fill(page, Enumerable.Repeat((byte)0xa5, 4096).ToArray());
        d.Submit(1, [Pfns(page.Address)], []);
        Assert.All(d.Contents(page), x => Assert.Equal(0xa5, x));
        Assert.Equal(0, _balloon.PagesReturned);
    }

    [Fact]
    public void Actual_written_by_the_driver_is_reported_even_in_pieces()
    {
        var d = _rig.Driver;
        d.Initialize();
        d.WriteConfig(4, 4, 1234);
        Assert.Equal(1234u, _balloon.ActualPages);
        Assert.Equal(1234UL, d.ReadConfig(4, 4));
        d.WriteConfig(6, 2, 1);
        Assert.Equal(1234u + 65536, _balloon.ActualPages);
        d.WriteConfig(0, 4, 999); // num_pages is the host's: ignored
        Assert.Equal(0u, _balloon.TargetPages);
    }

    [Fact]
    public void SetTarget_is_seen_in_config_with_a_config_interrupt()
    {
        var d = _rig.Driver;
        d.Initialize();
        uint generation = d.Reg(MmioTransport.RegConfigGeneration);
        _balloon.SetTarget(8UL << 20);
        Assert.Equal(2048UL, d.ReadConfig(0, 4));
        Assert.NotEqual(generation, d.Reg(MmioTransport.RegConfigGeneration));
        Assert.Equal(MmioTransport.InterruptConfigChanged, d.AckInterrupts());
        Assert.False(_rig.IrqLine);
    }

    [Fact]
    public void Statistics_are_parsed_and_the_buffer_returned_on_request()
    {
        var d = _rig.Driver;
        d.Initialize();
        var stats = d.Buffer(20);
        var s = _rig.Ram.GetSpan(stats.Address, 20);
        BinaryPrimitives.WriteUInt16LittleEndian(s, 4);          // free memory
        BinaryPrimitives.WriteUInt64LittleEndian(s[2..], 123456);
        BinaryPrimitives.WriteUInt16LittleEndian(s[10..], 5);    // total memory
        BinaryPrimitives.WriteUInt64LittleEndian(s[12..], 999999);
        d.Queue(2).Add([stats], []);
        d.Kick(2);
        Assert.True(VirtioTestDriver.WaitUntil(() => _balloon.Statistics is not null));
        Assert.Equal(123456UL, _balloon.Statistics!.FreeMemory);
        Assert.Equal(999999UL, _balloon.Statistics.TotalMemory);
        Assert.Null(_balloon.Statistics.SwapIn);
        Assert.Equal(0, d.Queue(2).PendingUsed); // held until the host asks
        _balloon.RequestStatistics();
        d.WaitUsed(2);
    }

    [Fact]
    public void Inflates_streamed_with_EVENT_IDX_are_never_missed()
    {
        var d = _rig.Driver;
        d.Initialize();
        d.Stream(0, 1000, [Pfns(0x1000)], []);
    }
}
