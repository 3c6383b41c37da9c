using System.Buffers.Binary;
using System.Text;

namespace HostVM.Storage.Iso;

/// <summary>
/// Writes a small ISO 9660 image: one root directory of regular files, with Rock Ridge names so that Linux (and
/// libarchive, isoinfo -R) show each file by its own name (<c>user-data</c> is no ISO 9660 name: plain ISO would
/// show <c>user_dat</c>). Made for cloud-init's NoCloud seed (volume <c>CIDATA</c>); written here so the daemon
/// needs no genisoimage where it runs. Layout, in 2048-byte sectors: 16 empty, the primary volume descriptor,
/// the terminator, the two path tables, the root directory, the continuation area holding Rock Ridge's ER entry
/// (after the directory: libarchive reads forward and refuses a continuation behind it), then each file from a
/// sector of its own. The output depends only on the arguments.
/// </summary>
public static class IsoImageWriter
{
    public const int SectorSize = 2048;

    /// <summary>Files in the root at most, so that the directory stays within one sector's worth of reasoning.</summary>
    public const int MaxFiles = 16;

    private const int PrimaryDescriptorSector = 16;
    private const int LittleEndianPathTableSector = 18;
    private const int BigEndianPathTableSector = 19;
    private const int RootSector = 20;
    private const int PathTableSize = 10;

    private const string RockRidgeId = "RRIP_1991A";
    private const string RockRidgeDescriptor = "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
    private const string RockRidgeSource = "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

    /// <summary>
    /// The image. <paramref name="volumeId"/>: 1-32 of A-Z, 0-9 and '_' (ISO 9660 d-characters); file names: 1-64 of
    /// a-z, A-Z, 0-9, '-', '_' and '.', each once. <paramref name="time"/> stamps the volume and every file.
    /// </summary>
    public static byte[] Write(string volumeId, IReadOnlyList<IsoFile> files, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(volumeId);
        ArgumentNullException.ThrowIfNull(files);
        if (volumeId.Length is < 1 or > 32 || !volumeId.All(c => c is (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_'))
        {
            throw new ArgumentException($"Volume identifier '{volumeId}': 1-32 of A-Z, 0-9 and '_'.", nameof(volumeId));
        }

        if (files.Count > MaxFiles)
        {
            throw new ArgumentException($"{files.Count} files; an image holds at most {MaxFiles}.", nameof(files));
        }

        var isoNames = IsoNames(files);
        var sorted = files.Select((f, i) => (File: f, IsoName: isoNames[i])).OrderBy(f => f.IsoName, StringComparer.Ordinal).ToList();

        // The root directory's records, laid out first to know its size; extents are filled in below.
        byte[] continuation = ExtensionReference();
        var dotDot = new List<byte[]> { RockRidgeFlags(0x01), PosixAttributes(0x41ED /* 040755 */, 2) };
        var dotLength = DirectoryWriter.RecordLength(1, [SharingProtocolIndicator(), .. dotDot, ContinuationEntry(0, 0)]);
        int rootSectors = DirectorySectors([dotLength, DirectoryWriter.RecordLength(1, dotDot), .. sorted.Select(f => DirectoryWriter.RecordLength(f.IsoName.Length, FileSystemUse(f.File.Name)))]);
        int continuationSector = RootSector + rootSectors;
        List<byte[]> dot = [SharingProtocolIndicator(), .. dotDot, ContinuationEntry(continuationSector, continuation.Length)];

        int next = continuationSector + 1;
        var extents = new List<(int Sector, int Length)>();
        foreach (var (file, _) in sorted)
        {
            extents.Add((next, file.Content.Length));
            next += (file.Content.Length + SectorSize - 1) / SectorSize;
        }

        int totalSectors = next;
        byte[] image = new byte[(long)totalSectors * SectorSize];
        var stamp = RecordingTime(time);

        // The root directory.
        int rootLength = rootSectors * SectorSize;
        var root = new DirectoryWriter(image.AsSpan(RootSector * SectorSize, rootLength));
        root.Add(RootSector, rootLength, directory: true, [0], stamp, dot);
        root.Add(RootSector, rootLength, directory: true, [1], stamp, dotDot);
        for (int i = 0; i < sorted.Count; i++)
        {
            var (file, isoName) = sorted[i];
            root.Add(extents[i].Sector, extents[i].Length, directory: false, Encoding.ASCII.GetBytes(isoName), stamp, FileSystemUse(file.Name));
            file.Content.CopyTo(image.AsSpan(extents[i].Sector * SectorSize));
        }

        continuation.CopyTo(image.AsSpan(continuationSector * SectorSize));
        WritePathTable(image.AsSpan(LittleEndianPathTableSector * SectorSize, PathTableSize), bigEndian: false);
        WritePathTable(image.AsSpan(BigEndianPathTableSector * SectorSize, PathTableSize), bigEndian: true);
        WritePrimaryDescriptor(image.AsSpan(PrimaryDescriptorSector * SectorSize, SectorSize), volumeId, totalSectors, rootLength, stamp, time);
        WriteTerminator(image.AsSpan((PrimaryDescriptorSector + 1) * SectorSize, SectorSize));
        return image;
    }

    /// <summary>8.3 upper-case names (ISO 9660 level 1, which every reader takes), unique; readers with Rock Ridge show the real name instead.</summary>
    private static List<string> IsoNames(IReadOnlyList<IsoFile> files)
    {
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            ArgumentNullException.ThrowIfNull(file);
            if (file.Name.Length is < 1 or > 64 || !file.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || file.Name is "." or "..")
            {
                throw new ArgumentException($"File name '{file.Name}': 1-64 of letters, digits, '-', '_' and '.'.", nameof(files));
            }

            string stem = new([.. file.Name.ToUpperInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').Take(8)]);
            string name = stem;
            for (int n = 1; !seen.Add(name); n++)
            {
                string suffix = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
                name = stem[..Math.Min(stem.Length, 8 - suffix.Length)] + suffix;
            }

            names.Add(name);
        }

        if (files.Select(f => f.Name).Distinct(StringComparer.Ordinal).Count() != files.Count)
        {
            throw new ArgumentException("Two files have the same name.", nameof(files));
        }

        return [.. names.Select(n => n + ".;1")];
    }

    private static List<byte[]> FileSystemUse(string name) =>
        [RockRidgeFlags(0x01 | 0x08), PosixAttributes(0x8124 /* 0100444 */, 1), AlternateName(name)];

    private static int DirectorySectors(IEnumerable<int> recordLengths)
    {
        // A record never crosses a sector boundary (ECMA-119 6.8.1.1).
        int sectors = 1;
        int used = 0;
        foreach (int length in recordLengths)
        {
            if (used + length > SectorSize)
            {
                sectors++;
                used = 0;
            }

            used += length;
        }

        return sectors;
    }

    /// <summary>SUSP's SP: this volume uses the System Use Sharing Protocol, with no bytes skipped.</summary>
    private static byte[] SharingProtocolIndicator() => [(byte)'S', (byte)'P', 7, 1, 0xBE, 0xEF, 0];

    /// <summary>RRIP 1.09's RR entry: which Rock Ridge entries follow (PX 0x01, NM 0x08); older readers look for it.</summary>
    private static byte[] RockRidgeFlags(byte flags) => [(byte)'R', (byte)'R', 5, 1, flags];

    /// <summary>PX: POSIX mode, links, uid and gid (0, root: the guest's cloud-init reads as root).</summary>
    private static byte[] PosixAttributes(int mode, int links)
    {
        byte[] entry = new byte[36];
        "PX"u8.CopyTo(entry);
        entry[2] = 36;
        entry[3] = 1;
        BothEndian32(entry.AsSpan(4), mode);
        BothEndian32(entry.AsSpan(12), links);
        return entry;
    }

    /// <summary>NM: the file's real name.</summary>
    private static byte[] AlternateName(string name)
    {
        byte[] entry = new byte[5 + name.Length];
        "NM"u8.CopyTo(entry);
        entry[2] = (byte)entry.Length;
        entry[3] = 1;
        Encoding.ASCII.GetBytes(name, entry.AsSpan(5));
        return entry;
    }

    /// <summary>CE: more system-use entries of this record continue at <paramref name="sector"/> (the ER entry, too long for a record).</summary>
    private static byte[] ContinuationEntry(int sector, int length)
    {
        byte[] entry = new byte[28];
        "CE"u8.CopyTo(entry);
        entry[2] = 28;
        entry[3] = 1;
        BothEndian32(entry.AsSpan(4), sector);
        BothEndian32(entry.AsSpan(12), 0);
        BothEndian32(entry.AsSpan(20), length);
        return entry;
    }

    /// <summary>ER: the extension in use is Rock Ridge (RRIP_1991A, as mkisofs writes it).</summary>
    private static byte[] ExtensionReference()
    {
        int length = 8 + RockRidgeId.Length + RockRidgeDescriptor.Length + RockRidgeSource.Length;
        byte[] entry = new byte[length];
        "ER"u8.CopyTo(entry);
        entry[2] = (byte)length;
        entry[3] = 1;
        entry[4] = (byte)RockRidgeId.Length;
        entry[5] = (byte)RockRidgeDescriptor.Length;
        entry[6] = (byte)RockRidgeSource.Length;
        entry[7] = 1;
        Encoding.ASCII.GetBytes(RockRidgeId + RockRidgeDescriptor + RockRidgeSource, entry.AsSpan(8));
        return entry;
    }

    private static void WritePathTable(Span<byte> table, bool bigEndian)
    {
        table[0] = 1; // the root's identifier: one byte, 0
        if (bigEndian)
        {
            BinaryPrimitives.WriteInt32BigEndian(table[2..], RootSector);
            BinaryPrimitives.WriteInt16BigEndian(table[6..], 1);
        }
        else
        {
            BinaryPrimitives.WriteInt32LittleEndian(table[2..], RootSector);
            BinaryPrimitives.WriteInt16LittleEndian(table[6..], 1);
        }
    }

    private static void WritePrimaryDescriptor(Span<byte> d, string volumeId, int totalSectors, int rootLength, byte[] stamp, DateTimeOffset time)
    {
        d[0] = 1;
        "CD001"u8.CopyTo(d[1..]);
        d[6] = 1;
        Text(d.Slice(8, 32), string.Empty);
        Text(d.Slice(40, 32), volumeId);
        BothEndian32(d[80..], totalSectors);
        BothEndian16(d[120..], 1); // volume set size
        BothEndian16(d[124..], 1); // volume sequence number
        BothEndian16(d[128..], SectorSize);
        BothEndian32(d[132..], PathTableSize);
        BinaryPrimitives.WriteInt32LittleEndian(d[140..], LittleEndianPathTableSector);
        BinaryPrimitives.WriteInt32BigEndian(d[148..], BigEndianPathTableSector);
        new DirectoryWriter(d.Slice(156, 34)).Add(RootSector, rootLength, directory: true, [0], stamp, []);
        Text(d.Slice(190, 128), string.Empty); // volume set
        Text(d.Slice(318, 128), string.Empty); // publisher
        Text(d.Slice(446, 128), string.Empty); // data preparer
        Text(d.Slice(574, 128), "HOSTVM");     // application
        Text(d.Slice(702, 37 * 3), string.Empty); // copyright, abstract and bibliographic files: none
        string when = time.UtcDateTime.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "00";
        Encoding.ASCII.GetBytes(when, d[813..]); // created
        Encoding.ASCII.GetBytes(when, d[830..]); // modified
        "0000000000000000"u8.CopyTo(d[847..]);    // never expires
        Encoding.ASCII.GetBytes(when, d[864..]); // effective
        d[881] = 1; // file structure version
    }

    private static void WriteTerminator(Span<byte> d)
    {
        d[0] = 255;
        "CD001"u8.CopyTo(d[1..]);
        d[6] = 1;
    }

    /// <summary>A directory record's 7-byte time: years since 1900, month, day, hour, minute, second, offset from UTC (0).</summary>
    private static byte[] RecordingTime(DateTimeOffset time)
    {
        var utc = time.UtcDateTime;
        return [(byte)(utc.Year - 1900), (byte)utc.Month, (byte)utc.Day, (byte)utc.Hour, (byte)utc.Minute, (byte)utc.Second, 0];
    }

    private static void Text(Span<byte> field, string text)
    {
        field.Fill((byte)' ');
        Encoding.ASCII.GetBytes(text, field);
    }

    internal static void BothEndian32(Span<byte> at, int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(at, value);
        BinaryPrimitives.WriteInt32BigEndian(at[4..], value);
    }

    internal static void BothEndian16(Span<byte> at, int value)
    {
        BinaryPrimitives.WriteInt16LittleEndian(at, (short)value);
        BinaryPrimitives.WriteInt16BigEndian(at[2..], (short)value);
    }
}
