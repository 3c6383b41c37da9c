using System.Text;

namespace HostVM.Machine.Tests.State;

using HostVM.Machine.State;

/// <summary>
/// The snapshot state file's container: what is written reads back; a file cut anywhere, with any single byte changed, of
/// another kind, or of a version this HostVM does not read is refused with one line naming the file and the section, never
/// loaded wrong; and the golden file of format version 1 still reads.
/// </summary>
public sealed class SnapshotFileTests : IDisposable
{
    private static readonly SnapshotHeader Header = new(SnapshotFile.FormatVersion, new Guid("0b5c1d2e-3f40-4152-8364-758697a8b9ca"),
        Guid.Empty, DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_000));

    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-snapshot-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void WhatIsWrittenReadsBack()
    {
        string path = Path.Combine(_dir, "vm.snap");
        SnapshotFile.WriteFile(path, Header with { Parent = Guid.NewGuid() }, Sections());
        Assert.False(File.Exists(path + ".partial"));
        var (header, sections) = SnapshotFile.ReadFile(path);
        Assert.Equal(SnapshotFile.FormatVersion, header.FormatVersion);
        Assert.Equal(Header.Id, header.Id);
        Assert.True(header.IsDiff);
        Assert.Equal(Header.Created, header.Created);
        Assert.Equal([SnapshotSectionType.Description, SnapshotSectionType.MachineState, SnapshotSectionType.MemoryMap], sections.Select(s => s.Type));
        Assert.Equal("{\"machine-config\":{}}", Encoding.UTF8.GetString(SnapshotFile.Single(sections, SnapshotSectionType.Description, path).Span));
        Assert.Equal(Enumerable.Range(0, 300).Select(i => (byte)i), SnapshotFile.Single(sections, SnapshotSectionType.MachineState, path).ToArray());
    }

    [Fact]
    public void AFileCutAnywhereOrWithAnyByteChangedIsRefused()
    {
        var bytes = Bytes(Header, Sections());
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            AssertRefused(bytes[..cut], null);
        }

        for (int at = 0; at < bytes.Length; at++)
        {
            var damaged = (byte[])bytes.Clone();
            damaged[at] ^= 0x10;
            AssertRefused(damaged, null);
        }

        AssertRefused([.. bytes, 0], "bytes follow the end section");
    }

    [Fact]
    public void AForeignFileOrAnUnknownVersionOrSectionIsRefusedByName()
    {
        AssertRefused("QFI\xfb\0\0\0\x03 a qcow2 image, not a snapshot, at least 64 bytes long......................"u8.ToArray(), "the header: not a HostVM snapshot");

        var newer = Bytes(Header with { FormatVersion = SnapshotFile.FormatVersion + 1 }, Sections());
        AssertRefused(newer, $"format version {SnapshotFile.FormatVersion + 1}; this HostVM (format version {SnapshotFile.FormatVersion}) reads versions {SnapshotFile.OldestReadableVersion} to {SnapshotFile.FormatVersion}: load it with a newer HostVM");
        AssertRefused(Bytes(Header with { FormatVersion = 0 }, Sections()), "format version 0;");

        // A later HostVM's optional section is skipped; a required one this HostVM does not know is refused.
        var optional = new SnapshotSection((SnapshotSectionType)77, new byte[] { 1, 2, 3 }, Optional: true);
        var (_, sections) = SnapshotFile.Read(new MemoryStream(Bytes(Header, [.. Sections(), optional])), "later.snap");
        Assert.Equal(3, sections.Count);
        AssertRefused(Bytes(Header, [.. Sections(), optional with { Optional = false }]), "section 4 (type 77): a section this HostVM does not know and may not skip");

        var e = Assert.Throws<SnapshotFormatException>(() => SnapshotFile.Single(sections.Take(1).ToList(), SnapshotSectionType.MemoryMap, "short.snap"));
        Assert.Equal("snapshot 'short.snap': the memory map: missing.", e.Message);
    }

    [Fact]
    public void TheGoldenFileOfVersionOneStillReads()
    {
        // Written once by format version 1 (Sections() with Header); a change to the format that cannot read it fails here.
        string golden = Path.Combine(AppContext.BaseDirectory, "State", "Golden", "container-v1.snap");
        var (header, sections) = SnapshotFile.ReadFile(golden);
        Assert.Equal((1, Header.Id, Header.Created), (header.FormatVersion, header.Id, header.Created));
        Assert.Equal(Sections().Select(s => (s.Type, Convert.ToHexString(s.Payload.Span))), sections.Select(s => (s.Type, Convert.ToHexString(s.Payload.Span))));
        Assert.Equal(Bytes(Header, Sections()), File.ReadAllBytes(golden)); // and version 1 still writes it the same way
    }

    private static List<SnapshotSection> Sections() =>
    [
        new(SnapshotSectionType.Description, "{\"machine-config\":{}}"u8.ToArray()),
        new(SnapshotSectionType.MachineState, Enumerable.Range(0, 300).Select(i => (byte)i).ToArray()),
        new(SnapshotSectionType.MemoryMap, new MemoryMap(0x8000_0000, 16 << 20, false, [(0, 8192)], new byte[32]).Encode()),
    ];

    private static byte[] Bytes(SnapshotHeader header, IReadOnlyList<SnapshotSection> sections)
    {
        using var stream = new MemoryStream();
        SnapshotFile.Write(stream, header, sections);
        return stream.ToArray();
    }

    private static void AssertRefused(byte[] bytes, string? message)
    {
        var e = Assert.Throws<SnapshotFormatException>(() => SnapshotFile.Read(new MemoryStream(bytes), "t.snap"));
        Assert.StartsWith("snapshot 't.snap': ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        if (message is not null)
        {
            Assert.Contains(message, e.Message, StringComparison.Ordinal);
        }
    }
}
