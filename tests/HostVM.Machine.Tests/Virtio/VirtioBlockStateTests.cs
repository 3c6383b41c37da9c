using System.Buffers.Binary;
using HostVM.Machine.Virtio;
using HostVM.Storage;
using static HostVM.Machine.Virtio.VirtioBlock;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-blk's state (queue indices, transport, limiter, held request) round-trips under random requests.</summary>
public sealed class VirtioBlockStateTests : IDisposable
{
    private const int DiskSize = 1 << 20;
    private readonly TempDisk _diskA = new(DiskSize, seed: 5);
    private readonly TempDisk _diskB = new(DiskSize, seed: 6);

    public void Dispose()
    {
        _diskA.Dispose();
        _diskB.Dispose();
    }

    private StateTwin Twin(bool legacy, RateLimitSettings? limits = null)
    {
        var paths = new Queue<string>([_diskA.Path, _diskB.Path]);
        var twin = new StateTwin(() => new VirtioBlock(RawFileBlockDevice.Open(paths.Dequeue(), false, "state-test"), limits), legacy);
        twin.AssertBackendsSame = step => Assert.True(Disk(twin.A).SequenceEqual(Disk(twin.B)), $"{step}: the disks differ");
        return twin;
    }

    private static byte[] Disk(VirtioRig rig)
    {
        var bytes = new byte[DiskSize];
        ((VirtioBlock)rig.Device).Backend.Read(0, bytes);
        return bytes;
    }

    /// <summary>The snapshot carries the disk apart (an overlay); here B's disk becomes a copy of A's.</summary>
    private static void CopyDisk(StateTwin twin) => ((VirtioBlock)twin.B.Device).Backend.Write(0, Disk(twin.A));

    /// <summary>A random read, write, flush, GET_ID or unknown request; kicked or left for a later kick.</summary>
    private static Action? Request(RequestTraffic t)
    {
        var r = t.Random;
        var d = t.Driver;
        uint type = new[] { RequestIn, RequestOut, RequestFlush, RequestGetId, 99u }[r.Next(5)];
        uint sectors = (uint)r.Next(1, 5);
        var header = d.Buffer(HeaderSize);
        var h = d.Ram.GetSpan(header.Address, HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], (ulong)r.Next(DiskSize / SectorSize - 8));
        var data = d.Buffer(sectors * SectorSize);
        r.NextBytes(d.Ram.GetSpan(data.Address, (int)data.Length));
        var status = d.Buffer(1);
        var q = d.Queue(0);
        if (q.FreeDescriptors < 3)
        {
            return t.Kick(0);
        }

        if (type == RequestOut)
        {
            q.Add([header, data], [status]);
        }
        else
        {
            q.Add([header], [data, status]);
        }

        return r.Next(3) != 0 ? t.Kick(0) : null;
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(false, 3)]
    [InlineData(true, 4)]
    [InlineData(true, 5)]
    public void Random_requests_after_a_restore_are_served_alike(bool legacy, int seed)
    {
        using var twin = Twin(legacy);
        new RequestTraffic(twin, seed).Run(40, Request, () => CopyDisk(twin));
    }

    [Fact]
    public void A_request_held_by_the_rate_limiter_is_replayed_after_a_restore()
    {
        // One operation an hour after a burst of three: the fifth request waits, popped, when A is saved.
        var limits = new RateLimitSettings(null, new TokenBucketSettings(1, TimeSpan.FromHours(1), OneTimeBurst: 3));
        using var twin = Twin(legacy: false, limits);
        var d = twin.A.Driver;
        d.Initialize();
        var statuses = new List<GuestBuffer>();
        for (int i = 0; i < 6; i++)
        {
            var header = d.Buffer(HeaderSize);
            BinaryPrimitives.WriteUInt32LittleEndian(d.Ram.GetSpan(header.Address, 4), RequestGetId);
            var id = d.Buffer(IdLength);
            var status = d.Buffer(1);
            d.Ram.GetSpan(status.Address, 1)[0] = 0xee;
            statuses.Add(status);
            d.Queue(0).Add([header], [id, status]);
        }

        d.Kick(0);
        twin.Settle();
        Assert.Equal(4, d.Queue(0).UsedIndex);
        var state = twin.A.Transport.SaveState();
        Assert.Equal(4, state.Queues[0].Ring!.LastAvail); // the held fifth is saved as not taken
        twin.SaveIntoB(() => CopyDisk(twin));
        twin.AssertSame("held");

        twin.Both(device => ((VirtioBlock)device).Limiter.Update(RateLimitSettings.Unlimited));
        twin.Write(MmioTransport.RegQueueNotify, 0);
        twin.AssertSame("released");
        Assert.Equal(6, d.Queue(0).UsedIndex);
        Assert.Equal(6, twin.B.Driver.Ram.GetSpan(d.Queue(0).UsedAddress + 2, 2)[0]);
        Assert.All(statuses, s => Assert.Equal(StatusOk, twin.B.Ram.GetSpan(s.Address, 1)[0]));
    }

    [Fact]
    public void The_limiter_state_goes_with_the_device()
    {
        var limits = new RateLimitSettings(new TokenBucketSettings(1 << 20, TimeSpan.FromSeconds(1), 4096), null);
        using var twin = Twin(legacy: false, limits);
        var block = (VirtioBlock)twin.A.Device;
        Assert.True(block.Limiter.TryConsume(300_000, out _));
        var state = (VirtioBlockState)block.SaveState();
        twin.B.Device.RestoreState(state);
        var restored = (VirtioBlockState)twin.B.Device.SaveState();
        Assert.Equal(state.Limiter.Settings, restored.Limiter.Settings);
        Assert.Equal(state.Limiter.Bandwidth!.Burst, restored.Limiter.Bandwidth!.Burst);
        Assert.InRange(restored.Limiter.Bandwidth.Tokens, state.Limiter.Bandwidth.Tokens - 1, state.Limiter.Bandwidth.Tokens + 1);
        Assert.Throws<ArgumentException>(() => twin.B.Device.RestoreState(new VirtioRngState()));
    }
}
