using System.Buffers.Binary;
using System.Text;
using HostVM.Machine.Virtio;
using HostVM.Storage;
using static HostVM.Machine.Virtio.VirtioBlock;

namespace HostVM.Machine.Tests.Virtio;

public sealed class VirtioBlockTests : IDisposable
{
    private const int DiskSize = 1 << 20;
    private const string Serial = "hostvm-test-serial-0";

    private readonly TempDisk _disk = new(DiskSize);
    private VirtioRig? _rig;

    public void Dispose()
    {
        _rig?.Dispose();
        _disk.Dispose();
    }

    private VirtioTestDriver Open(bool legacy = false, bool readOnly = false, RateLimitSettings? limits = null)
    {
        var block = new VirtioBlock(RawFileBlockDevice.Open(_disk.Path, readOnly, Serial), limits);
        _rig = new VirtioRig(block, legacy);
        _rig.Driver.Initialize();
        return _rig.Driver;
    }

    private VirtioBlock Block => (VirtioBlock)_rig!.Device;

    /// <summary>One virtio-blk request: header, data out, data in, status byte. Returns the status and the used entry.</summary>
    private static (byte Status, UsedElement Used) Request(
        VirtioTestDriver d, uint type, ulong sector, IReadOnlyList<GuestBuffer>? dataOut = null, IReadOnlyList<GuestBuffer>? dataIn = null, bool indirect = false)
    {
        var header = d.Buffer(HeaderSize);
        var h = d.Ram.GetSpan(header.Address, HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], sector);
        var status = d.Buffer(1);
        d.Ram.GetSpan(status.Address, 1)[0] = 0xee;
        var used = d.Submit(0, [header, .. dataOut ?? []], [.. dataIn ?? [], status], indirect);
        return (d.Ram.GetSpan(status.Address, 1)[0], used);
    }

    private static GuestBuffer Range(VirtioTestDriver d, ulong sector, uint sectors, uint flags)
    {
        var b = d.Buffer(16);
        var s = d.Ram.GetSpan(b.Address, 16);
        BinaryPrimitives.WriteUInt64LittleEndian(s, sector);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], sectors);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], flags);
        return b;
    }

    private byte[] DiskBytes(long offset, int length)
    {
        var bytes = new byte[length];
        Block.Backend.Read(offset, bytes);
        return bytes;
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Multi_segment_write_then_read_round_trips(bool legacy, bool indirect)
    {
        var d = Open(legacy);
        var data = new byte[4096];
        new Random(42).NextBytes(data);
        GuestBuffer[] outBufs = [d.Buffer(512), d.Buffer(1024), d.Buffer(2560)];
        int at = 0;
        foreach (var b in outBufs)
        {
            d.Fill(b, data.AsSpan(at, (int)b.Length));
            at += (int)b.Length;
        }

        var (status, used) = Request(d, RequestOut, 10, outBufs, indirect: indirect);
        Assert.Equal(StatusOk, status);
        Assert.Equal(1u, used.Written);
        Assert.Equal(data, DiskBytes(10 * 512, 4096));
        Assert.Equal(_disk.Initial.AsSpan(0, 10 * 512).ToArray(), DiskBytes(0, 10 * 512)); // nothing before it moved

        GuestBuffer[] inBufs = [d.Buffer(1536), d.Buffer(2048), d.Buffer(512)];
        (status, used) = Request(d, RequestIn, 10, dataIn: inBufs, indirect: indirect);
        Assert.Equal(StatusOk, status);
        Assert.Equal(4097u, used.Written);
        Assert.Equal(data, inBufs.SelectMany(d.Contents).ToArray());
        Assert.Equal(1, Block.Statistics.Reads);
        Assert.Equal(4096, Block.Statistics.BytesWritten);
    }

    [Fact]
    public void A_read_marks_the_pages_of_its_buffers_dirty()
    {
        var d = Open();
        var buf = d.Buffer(2 * 4096, align: 4096);
        d.Ram.DirtyPages.Enable();
        Assert.Equal(StatusOk, Request(d, RequestIn, 0, dataIn: [buf]).Status);

        var set = new HostVM.Machine.Memory.DirtyPageSet(d.Ram.DirtyPages.PageCount);
        d.Ram.DirtyPages.TakeInto(set);
        int first = (int)((buf.Address - d.Ram.BaseAddress) / 4096);
        Assert.True(set.Contains(first) && set.Contains(first + 1), "the read's pages are not marked");
    }

    [Fact]
    public void Read_into_a_buffer_shared_with_the_status_byte()
    {
        var d = Open();
        var header = d.Buffer(HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(d.Ram.GetSpan(header.Address, 4), RequestIn);
        var dataAndStatus = d.Buffer(513);
        d.Ram.GetSpan(dataAndStatus.Address + 512, 1)[0] = 0xee;
        var used = d.Submit(0, [header], [dataAndStatus]);
        Assert.Equal(513u, used.Written);
        Assert.Equal(StatusOk, d.Ram.GetSpan(dataAndStatus.Address + 512, 1)[0]);
        Assert.Equal(_disk.Initial.AsSpan(0, 512).ToArray(), d.Ram.GetSpan(dataAndStatus.Address, 512).ToArray());
    }

    [Theory]
    [InlineData(DiskSize / 512, 1)]        // first sector past the end
    [InlineData((DiskSize / 512) - 1, 2)]  // runs over the end
    [InlineData(ulong.MaxValue / 512, 1)]  // sector × 512 would overflow
    [InlineData(ulong.MaxValue, 1)]
    public void Out_of_range_sectors_fail_with_IOERR(ulong sector, int sectors)
    {
        var d = Open();
        var (status, used) = Request(d, RequestIn, sector, dataIn: [d.Buffer((uint)(512 * sectors))]);
        Assert.Equal(StatusIoError, status);
        Assert.Equal(1u, used.Written);

        var out1 = d.Buffer((uint)(512 * sectors));
        d.Fill(out1, Enumerable.Repeat((byte)0x5a, (int)out1.Length).ToArray());
        (status, _) = Request(d, RequestOut, sector, dataOut: [out1]);
        Assert.Equal(StatusIoError, status);
        Assert.Equal(_disk.Initial.AsSpan(DiskSize - 1024).ToArray(), DiskBytes(DiskSize - 1024, 1024));
        Assert.Equal(2, Block.Statistics.Errors);
    }

    [Fact]
    public void The_last_sector_is_in_range()
    {
        var d = Open();
        var buf = d.Buffer(512);
        Assert.Equal(StatusOk, Request(d, RequestIn, (DiskSize / 512) - 1, dataIn: [buf]).Status);
        Assert.Equal(_disk.Initial.AsSpan(DiskSize - 512).ToArray(), d.Contents(buf));
    }

    [Fact]
    public void Partial_sector_transfers_fail_with_IOERR()
    {
        var d = Open();
        Assert.Equal(StatusIoError, Request(d, RequestIn, 0, dataIn: [d.Buffer(100)]).Status);
        Assert.Equal(StatusIoError, Request(d, RequestOut, 0, dataOut: [d.Buffer(100)]).Status);
        Assert.Equal(_disk.Initial.AsSpan(0, 512).ToArray(), DiskBytes(0, 512));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Read_only_drive_refuses_writes_discards_and_zeroes_and_the_file_stays_unchanged(bool legacy)
    {
        var d = Open(legacy, readOnly: true);
        Assert.NotEqual(0UL, d.DeviceFeatures() & FeatureReadOnly);
        var buf = d.Buffer(4096);
        d.Fill(buf, new byte[4096]);
        Assert.Equal(StatusIoError, Request(d, RequestOut, 0, dataOut: [buf]).Status);
        Assert.Equal(StatusIoError, Request(d, RequestDiscard, 0, dataOut: [Range(d, 0, 8, 0)]).Status);
        Assert.Equal(StatusIoError, Request(d, RequestWriteZeroes, 0, dataOut: [Range(d, 0, 8, 1)]).Status);
        Assert.Equal(StatusOk, Request(d, RequestIn, 0, dataIn: [buf]).Status); // reads still work
        Assert.Equal(StatusOk, Request(d, RequestFlush, 0).Status);
        _rig!.Dispose();
        _rig = null;
        Assert.Equal(_disk.Initial, File.ReadAllBytes(_disk.Path));
    }

    [Fact]
    public void Writable_drive_does_not_offer_read_only()
    {
        var d = Open();
        Assert.Equal(0UL, d.DeviceFeatures() & FeatureReadOnly);
        Assert.Equal(FeatureFlush | FeatureDiscard | FeatureWriteZeroes | FeatureBlockSize | FeatureSegMax, d.Features & 0xffff_ffff & ~VirtioFeatures.Transport);
    }

    [Fact]
    public void Flush_succeeds_and_is_counted()
    {
        var d = Open();
        var (status, used) = Request(d, RequestFlush, 0);
        Assert.Equal(StatusOk, status);
        Assert.Equal(1u, used.Written);
        Assert.Equal(1, Block.Statistics.Flushes);
    }

    [Theory]
    [InlineData(20u, 20)]
    [InlineData(8u, 8)] // a short buffer gets the start of the serial
    public void GET_ID_returns_the_serial(uint room, int expected)
    {
        var d = Open();
        var id = d.Buffer(room);
        var (status, used) = Request(d, RequestGetId, 0, dataIn: [id]);
        Assert.Equal(StatusOk, status);
        Assert.Equal((uint)expected + 1, used.Written);
        Assert.Equal(Serial[..expected], Encoding.ASCII.GetString(d.Contents(id)));
    }

    [Theory]
    [InlineData(RequestDiscard, 0u)]
    [InlineData(RequestWriteZeroes, 0u)]
    [InlineData(RequestWriteZeroes, 1u)]
    public void Discard_and_write_zeroes_make_the_range_read_zero(uint type, uint flags)
    {
        var d = Open();
        Assert.Equal(StatusOk, Request(d, type, 0, dataOut: [Range(d, 16, 16, flags)]).Status);
        var buf = d.Buffer(32 * 512);
        Assert.Equal(StatusOk, Request(d, RequestIn, 0, dataIn: [buf]).Status);
        var bytes = d.Contents(buf);
        Assert.Equal(_disk.Initial.AsSpan(0, 16 * 512).ToArray(), bytes[..(16 * 512)]);
        Assert.All(bytes[(16 * 512)..], b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData(RequestDiscard, 1u)]  // unmap is only for write-zeroes
    [InlineData(RequestDiscard, 2u)]  // unknown flag
    [InlineData(RequestWriteZeroes, 4u)]
    public void Discard_with_bad_flags_is_unsupported(uint type, uint flags)
    {
        var d = Open();
        Assert.Equal(StatusUnsupported, Request(d, type, 0, dataOut: [Range(d, 16, 16, flags)]).Status);
        Assert.Equal(_disk.Initial.AsSpan(16 * 512, 16 * 512).ToArray(), DiskBytes(16 * 512, 16 * 512));
    }

    [Fact]
    public void Discard_out_of_range_fails_with_IOERR()
    {
        var d = Open();
        Assert.Equal(StatusIoError, Request(d, RequestDiscard, 0, dataOut: [Range(d, (DiskSize / 512) - 8, 16, 0)]).Status);
        Assert.Equal(StatusIoError, Request(d, RequestWriteZeroes, 0, dataOut: [Range(d, ulong.MaxValue - 1, 16, 0)]).Status);
        Assert.Equal(_disk.Initial.AsSpan(DiskSize - 4096).ToArray(), DiskBytes(DiskSize - 4096, 4096));
    }

    [Theory]
    [InlineData(2u)]
    [InlineData(7u)]
    [InlineData(99u)]
    [InlineData(uint.MaxValue)]
    public void Unknown_request_types_are_UNSUPP(uint type)
    {
        var d = Open();
        var (status, used) = Request(d, type, 0, dataIn: [d.Buffer(512)]);
        Assert.Equal(StatusUnsupported, status);
        Assert.Equal(1u, used.Written);
    }

    [Fact]
    public void Request_without_a_writable_status_byte_completes_and_the_device_carries_on()
    {
        var d = Open();
        var header = d.Buffer(HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(d.Ram.GetSpan(header.Address, 4), RequestIn);
        Assert.Equal(0u, d.Submit(0, [header], []).Written);
        Assert.Equal(StatusOk, Request(d, RequestFlush, 0).Status);
        Assert.Null(_rig!.Transport.Error);
    }

    [Fact]
    public void Short_header_fails_with_IOERR()
    {
        var d = Open();
        var status = d.Buffer(1);
        Assert.Equal(1u, d.Submit(0, [d.Buffer(8)], [status]).Written);
        Assert.Equal(StatusIoError, d.Contents(status)[0]);
    }

    [Fact]
    public void Config_space_has_capacity_block_size_and_segment_limit_at_any_width()
    {
        var d = Open();
        Assert.Equal((ulong)DiskSize / 512, d.ReadConfig(0, 8));
        Assert.Equal((ulong)DiskSize / 512, d.ReadConfig(0, 4) | (d.ReadConfig(4, 4) << 32));
        Assert.Equal((ulong)(DiskSize / 512) & 0xff, d.ReadConfig(0, 1));
        Assert.Equal((ulong)(DiskSize / 512) >> 8 & 0xffff, d.ReadConfig(1, 2));
        Assert.Equal(MaxSegments, d.ReadConfig(12, 4));
        Assert.Equal(512UL, d.ReadConfig(20, 4));
    }

    [Fact]
    public void Many_requests_in_flight_all_complete()
    {
        var d = Open();
        var q = d.Queue(0);
        var statuses = new List<GuestBuffer>();
        for (int i = 0; i < 16; i++)
        {
            var header = d.Buffer(HeaderSize);
            BinaryPrimitives.WriteUInt32LittleEndian(d.Ram.GetSpan(header.Address, 4), RequestIn);
            BinaryPrimitives.WriteUInt64LittleEndian(d.Ram.GetSpan(header.Address + 8, 8), (ulong)i);
            var status = d.Buffer(1);
            statuses.Add(status);
            q.Add([header], [d.Buffer(512), status]);
        }

        d.Kick(0);
        Assert.True(VirtioTestDriver.WaitUntil(() => q.PendingUsed == 16));
        Assert.All(statuses, s => Assert.Equal(StatusOk, d.Contents(s)[0]));
    }

    [Fact]
    public void A_request_runs_as_the_type_it_was_charged_as_even_if_the_guest_rewrites_its_header()
    {
        // One operation per 2 s: the second request waits in the device, and meanwhile the guest turns
        // its header from FLUSH (0 bytes) into a write of 512 bytes. It must run as the FLUSH it was charged as.
        var d = Open(limits: new RateLimitSettings(null, new TokenBucketSettings(1, TimeSpan.FromSeconds(2))));
        Assert.Equal(StatusOk, Request(d, RequestFlush, 0).Status);

        var header = d.Buffer(HeaderSize);
        var h = d.Ram.GetSpan(header.Address, HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(h, RequestFlush);
        var data = d.Buffer(512);
        d.Ram.GetSpan(data.Address, 512).Fill(0xab);
        var status = d.Buffer(1);
        d.Queue(0).Add([header, data], [status]);
        d.Kick(0);
        Assert.True(VirtioTestDriver.WaitUntil(() => Block.Limiter.Throttled > 0), "the second request is held by the limiter");
        BinaryPrimitives.WriteUInt32LittleEndian(h, RequestOut);

        d.WaitUsed(0, TimeSpan.FromSeconds(10));
        Assert.Equal(2, Block.Statistics.Flushes);
        Assert.Equal(_disk.Initial.AsSpan(0, 512).ToArray(), DiskBytes(0, 512));
    }

    [Theory]
    [InlineData(RequestDiscard, 0u)]
    [InlineData(RequestWriteZeroes, 0u)]
    [InlineData(RequestWriteZeroes, 1u)]
    public void Discard_and_write_zeroes_are_charged_for_their_range(uint type, uint flags)
    {
        // 8 KiB per 10 s: zeroing 16 sectors (8 KiB) empties the bucket, so the next 512-byte read waits.
        var d = Open(limits: new RateLimitSettings(new TokenBucketSettings(8192, TimeSpan.FromSeconds(10)), null));
        Assert.Equal(StatusOk, Request(d, type, 0, dataOut: [Range(d, 16, 16, flags)]).Status);
        Assert.Equal(0, Block.Limiter.Throttled);
        Assert.Equal(StatusOk, Request(d, RequestIn, 0, dataIn: [d.Buffer(512)]).Status);
        Assert.True(Block.Limiter.Throttled > 0, "a read after a free zeroing would not have waited");
    }
}
