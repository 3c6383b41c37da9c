using System.Buffers.Binary;
using System.Security.Cryptography;

namespace HostVM.Machine.State;

/// <summary>
/// Writes and reads a snapshot's state file (docs/snapshot-format.md): a 64-byte header, then sections, each with its own
/// SHA-256, then an end section whose SHA-256 covers the whole file before it. A reader never acts on a byte it has not
/// checked: a cut, corrupted or foreign file, or one of a format version this HostVM does not read, is refused with one
/// line that names the file and the section.
/// </summary>
public static class SnapshotFile
{
    /// <summary>The version this HostVM writes.</summary>
    public const int FormatVersion = 1;

    /// <summary>The oldest version this HostVM still reads (each one it reads has its tests and golden file).</summary>
    public const int OldestReadableVersion = 1;

    /// <summary>The most a section other than the memory may hold: state records are KiBs; more means a bad file.</summary>
    public const long MaxSectionBytes = 256L << 20;

    public const int HeaderBytes = 64;

    private const int HashBytes = 32;
    private const int SectionHeadBytes = 16; // type, flags, length
    private const uint OptionalFlag = 1;
    private static readonly byte[] Magic = "HOSTVMSS"u8.ToArray();

    /// <summary>Writes <paramref name="path"/> whole, durable (synced) and under its name only once complete.</summary>
    public static void WriteFile(string path, SnapshotHeader header, IReadOnlyList<SnapshotSection> sections)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string partial = full + ".partial";
        try
        {
            using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                Write(file, header, sections);
                file.Flush(flushToDisk: true);
            }

            File.Move(partial, full, overwrite: true);
            Storage.FileSync.Entries(Path.GetDirectoryName(full)!);
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
    }

    public static void Write(Stream stream, SnapshotHeader header, IReadOnlyList<SnapshotSection> sections)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(sections);
        using var whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var head = new byte[HeaderBytes];
        Magic.CopyTo(head, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(8), (ushort)header.FormatVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(10), HeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(12), (uint)sections.Count);
        header.Id.TryWriteBytes(head.AsSpan(16));
        header.Parent.TryWriteBytes(head.AsSpan(32));
        BinaryPrimitives.WriteInt64LittleEndian(head.AsSpan(48), header.Created.ToUnixTimeMilliseconds());
        Put(stream, whole, head);
        foreach (var section in sections)
        {
            if (section.Type == SnapshotSectionType.End || section.Payload.Length > MaxSectionBytes)
            {
                throw new ArgumentException($"section {section.Type}: not one a snapshot may hold ({section.Payload.Length} bytes).", nameof(sections));
            }

            var sectionHead = SectionHead(section.Type, section.Optional ? OptionalFlag : 0, section.Payload.Length);
            Put(stream, whole, sectionHead);
            Put(stream, whole, section.Payload.Span);
            Put(stream, whole, SectionHash(sectionHead, section.Payload.Span));
        }

        var end = SectionHead(SnapshotSectionType.End, 0, 0);
        Put(stream, whole, end);
        stream.Write(whole.GetHashAndReset());
    }

    /// <summary>Reads and checks a state file; returns its header and its sections (the optional ones it knows).</summary>
    /// <exception cref="SnapshotFormatException">The file is not a snapshot this HostVM reads, or is damaged.</exception>
    public static (SnapshotHeader Header, IReadOnlyList<SnapshotSection> Sections) ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return Read(file, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SnapshotFormatException($"snapshot '{path}': cannot be read: {e.Message}", e);
        }
    }

    public static (SnapshotHeader Header, IReadOnlyList<SnapshotSection> Sections) Read(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var head = Take(stream, whole, HeaderBytes, name, "the header");
        if (!head.AsSpan(0, 8).SequenceEqual(Magic))
        {
            throw Bad(name, "the header", "not a HostVM snapshot (no HOSTVMSS magic)");
        }

        int version = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(8));
        if (version is < OldestReadableVersion or > FormatVersion)
        {
            throw Bad(name, "the header", $"format version {version}; this HostVM (format version {FormatVersion}) reads versions {OldestReadableVersion} to {FormatVersion}"
                + (version > FormatVersion ? ": load it with a newer HostVM" : string.Empty));
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(10)) != HeaderBytes)
        {
            throw Bad(name, "the header", $"a header of {BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(10))} bytes, not {HeaderBytes}");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(12));
        if (count > 64)
        {
            throw Bad(name, "the header", $"{count} sections; a snapshot has a handful");
        }

        var header = new SnapshotHeader(version, new Guid(head.AsSpan(16, 16)), new Guid(head.AsSpan(32, 16)),
            DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(48)), 0, 253402300799999)));
        var sections = new List<SnapshotSection>();
        for (int i = 0; i < count; i++)
        {
            string where = $"section {i + 1}";
            var sectionHead = Take(stream, whole, SectionHeadBytes, name, where);
            var type = (SnapshotSectionType)BinaryPrimitives.ReadUInt32LittleEndian(sectionHead);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(sectionHead.AsSpan(4));
            long length = BinaryPrimitives.ReadInt64LittleEndian(sectionHead.AsSpan(8));
            bool known = Enum.IsDefined(type) && type != SnapshotSectionType.End;
            where = known ? $"section {i + 1} ({Describe(type)})" : $"section {i + 1} (type {(uint)type})";
            if (length is < 0 or > MaxSectionBytes || (flags & ~OptionalFlag) != 0)
            {
                throw Bad(name, where, length is < 0 or > MaxSectionBytes ? $"a length of {length} bytes" : $"unknown flags 0x{flags:x}");
            }

            var payload = Take(stream, whole, (int)length, name, where);
            var hash = Take(stream, whole, HashBytes, name, where);
            if (!hash.AsSpan().SequenceEqual(SectionHash(sectionHead, payload)))
            {
                throw Bad(name, where, "its checksum does not match its bytes (the file is damaged)");
            }

            bool optional = (flags & OptionalFlag) != 0;
            if (!known && !optional)
            {
                throw Bad(name, where, "a section this HostVM does not know and may not skip");
            }

            if (known)
            {
                sections.Add(new SnapshotSection(type, payload, optional));
            }
        }

        var end = Take(stream, whole, SectionHeadBytes, name, "the end");
        if ((SnapshotSectionType)BinaryPrimitives.ReadUInt32LittleEndian(end) != SnapshotSectionType.End || end.AsSpan(4).ContainsAnyExcept((byte)0))
        {
            throw Bad(name, "the end", "no end section where the header's section count says it is");
        }

        var expected = whole.GetHashAndReset();
        var fileHash = new byte[HashBytes];
        if (stream.ReadAtLeast(fileHash, HashBytes, throwOnEndOfStream: false) != HashBytes)
        {
            throw Bad(name, "the end", "the file is cut short");
        }

        if (!fileHash.AsSpan().SequenceEqual(expected))
        {
            throw Bad(name, "the end", "the file's checksum does not match (the header or a section's framing is damaged)");
        }

        if (stream.ReadByte() >= 0)
        {
            throw Bad(name, "the end", "bytes follow the end section");
        }

        return (header, sections);
    }

    /// <summary>The one section of <paramref name="type"/> a snapshot must have.</summary>
    /// <exception cref="SnapshotFormatException">It has none, or more than one.</exception>
    public static ReadOnlyMemory<byte> Single(IReadOnlyList<SnapshotSection> sections, SnapshotSectionType type, string name)
    {
        ArgumentNullException.ThrowIfNull(sections);
        var found = sections.Where(s => s.Type == type).ToList();
        return found.Count == 1 ? found[0].Payload
            : throw Bad(name, Describe(type), found.Count == 0 ? "missing" : $"{found.Count} of them, one expected");
    }

    internal static SnapshotFormatException Bad(string name, string where, string what) => new($"snapshot '{name}': {where}: {what}.");

    private static string Describe(SnapshotSectionType type) => type switch
    {
        SnapshotSectionType.Description => "the VM's description",
        SnapshotSectionType.MachineState => "the machine state",
        SnapshotSectionType.MemoryMap => "the memory map",
        _ => type.ToString(),
    };

    private static byte[] SectionHead(SnapshotSectionType type, uint flags, long length)
    {
        var head = new byte[SectionHeadBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(head, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(4), flags);
        BinaryPrimitives.WriteInt64LittleEndian(head.AsSpan(8), length);
        return head;
    }

    private static byte[] SectionHash(ReadOnlySpan<byte> head, ReadOnlySpan<byte> payload)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(head);
        hash.AppendData(payload);
        return hash.GetHashAndReset();
    }

    private static void Put(Stream stream, IncrementalHash whole, ReadOnlySpan<byte> bytes)
    {
        stream.Write(bytes);
        whole.AppendData(bytes);
    }

    private static byte[] Take(Stream stream, IncrementalHash whole, int length, string name, string where)
    {
        if (stream.CanSeek && length > stream.Length - stream.Position)
        {
            throw Bad(name, where, "the file is cut short"); // before a hostile length is allocated
        }

        var bytes = new byte[length];
        if (stream.ReadAtLeast(bytes, length, throwOnEndOfStream: false) != length)
        {
            throw Bad(name, where, "the file is cut short");
        }

        whole.AppendData(bytes);
        return bytes;
    }
}
