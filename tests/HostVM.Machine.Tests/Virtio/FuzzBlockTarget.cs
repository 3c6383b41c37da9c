using System.Buffers.Binary;
using HostVM.Machine.Virtio;
using HostVM.Storage;
using static HostVM.Machine.Virtio.VirtioBlock;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-blk on a temporary raw file: random request types and sectors, short headers, missing status bytes.</summary>
internal sealed class FuzzBlockTarget : FuzzTarget
{
    private const int DiskSize = 256 << 10;
    private const ulong Capacity = DiskSize / SectorSize;

    private static readonly uint[] Types = [RequestIn, RequestOut, RequestFlush, RequestGetId, RequestDiscard, RequestWriteZeroes];

    private readonly TempDisk _disk = new(DiskSize, seed: 7);
    private readonly VirtioBlock _block;

    public FuzzBlockTarget() => _block = new VirtioBlock(RawFileBlockDevice.Open(_disk.Path, readOnly: false, "fuzz"));

    public override VirtioDevice Device => _block;

    public override FuzzRequest MalformedRequest(FuzzGuest guest)
    {
        var r = guest.Random;
        var segments = new List<DescriptorSegment>();
        uint type = r.Next(5) == 0 ? (uint)r.Next() : Types[r.Next(Types.Length)];

        // The header: usually 16 bytes, sometimes too short (or split), with a random sector.
        var header = new byte[r.Next(4) == 0 ? r.Next(0, 40) : HeaderSize];
        if (header.Length >= 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header, type);
        }

        if (header.Length >= 16)
        {
            ulong sector = r.Next(7) switch
            {
                0 => 0,
                1 => Capacity - 1,
                2 => Capacity,
                3 => ulong.MaxValue,
                4 => ulong.MaxValue / SectorSize,
                5 => (ulong)r.NextInt64(),
                _ => (ulong)r.Next((int)Capacity),
            };
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(8), sector);
        }

        ulong h = guest.ScratchWith(header);
        if (header.Length > 4 && r.Next(4) == 0)
        {
            segments.Add(new DescriptorSegment(h, 4, false));
            segments.Add(new DescriptorSegment(h + 4, (uint)header.Length - 4, false));
        }
        else
        {
            segments.Add(new DescriptorSegment(h, (uint)header.Length, false));
        }

        if (type is RequestDiscard or RequestWriteZeroes && r.Next(2) == 0)
        {
            var range = new byte[r.Next(3) == 0 ? r.Next(0, 40) : 16];
            r.NextBytes(range);
            if (range.Length >= 12 && r.Next(2) == 0)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(range, (ulong)r.Next((int)Capacity));
                BinaryPrimitives.WriteUInt32LittleEndian(range.AsSpan(8), (uint)r.Next(0, 64));
            }

            segments.Add(new DescriptorSegment(guest.ScratchWith(range), (uint)range.Length, false));
        }

        // Data: readable for writes, writable for reads, sometimes the wrong way round or garbage.
        int data = r.Next(0, 4);
        for (int i = 0; i < data; i++)
        {
            uint length = r.Next(3) == 0 ? (uint)r.Next(0, 2000) : (uint)r.Next(1, 9) * SectorSize;
            bool writable = type == RequestOut ? r.Next(8) == 0 : r.Next(8) != 0;
            segments.Add(r.Next(10) == 0 ? guest.RandomSegment() : guest.RandomBytes(length, writable));
        }

        // The status byte: usually there, sometimes missing or part of a bigger buffer.
        switch (r.Next(6))
        {
            case 0:
                break;
            case 1:
                segments.Add(guest.RandomBytes((uint)r.Next(2, 600), writable: true));
                break;
            default:
                segments.Add(guest.RandomBytes(1, writable: true));
                break;
        }

        // Readable before writable, mostly; a hostile order now and then.
        if (r.Next(6) != 0)
        {
            segments.Sort((a, b) => a.Writable.CompareTo(b.Writable));
        }

        return new FuzzRequest(0, segments);
    }

    public override void CheckLive(FuzzGuest guest, int batch)
    {
        var d = guest.Driver;
        var header = d.Buffer(HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(d.Ram.GetSpan(header.Address, 4), RequestIn); // sector 0
        var data = d.Buffer(SectorSize);
        var status = d.Buffer(1);
        d.Ram.GetSpan(status.Address, 1)[0] = 0xee;
        var used = d.Submit(0, [header], [data, status], indirect: batch % 2 == 1);
        Assert.Equal(SectorSize + 1u, used.Written);
        Assert.Equal(StatusOk, d.Ram.GetSpan(status.Address, 1)[0]);

        // The file as the backend holds it (it keeps the file locked; random writes may have changed it).
        var expected = new byte[SectorSize];
        _block.Backend.Read(0, expected);

        Assert.Equal(expected, d.Contents(data));
    }

    public override void CheckExercised(FuzzGuest guest)
    {
        Assert.True(_block.Statistics.Errors > 0, $"seed 0x{guest.Seed:x}: no malformed block request ever reached the device");
        Assert.True(_block.Statistics.Reads + _block.Statistics.Writes + _block.Statistics.Flushes > 0, $"seed 0x{guest.Seed:x}: no random request ever succeeded");
    }

    public override void Dispose() => _disk.Dispose(); // the device (and its file) is disposed by the rig first
}
