namespace HostVM.Storage.Iso;

/// <summary>Appends ISO 9660 directory records to a directory's sectors, starting a new sector where a record would cross one.</summary>
internal ref struct DirectoryWriter(Span<byte> directory)
{
    private readonly Span<byte> _directory = directory;
    private int _used;

    /// <summary>A record's length: 33 bytes, the name padded to an even offset, the system-use entries, padded to even.</summary>
    public static int RecordLength(int nameLength, List<byte[]> systemUse)
    {
        int length = NameEnd(nameLength) + systemUse.Sum(e => e.Length);
        return length + (length % 2);
    }

    public void Add(int extent, int length, bool directory, ReadOnlySpan<byte> name, byte[] stamp, List<byte[]> systemUse)
    {
        int nameEnd = NameEnd(name.Length);
        int recordLength = RecordLength(name.Length, systemUse);
        int sectorLeft = IsoImageWriter.SectorSize - (_used % IsoImageWriter.SectorSize);
        if (recordLength > sectorLeft && _directory.Length > IsoImageWriter.SectorSize)
        {
            _used += sectorLeft;
        }

        var record = _directory.Slice(_used, recordLength);
        record[0] = (byte)recordLength;
        IsoImageWriter.BothEndian32(record[2..], extent);
        IsoImageWriter.BothEndian32(record[10..], length);
        stamp.CopyTo(record[18..]);
        record[25] = (byte)(directory ? 2 : 0);
        IsoImageWriter.BothEndian16(record[28..], 1); // volume sequence number
        record[32] = (byte)name.Length;
        name.CopyTo(record[33..]);
        int at = nameEnd;
        foreach (byte[] entry in systemUse)
        {
            entry.CopyTo(record[at..]);
            at += entry.Length;
        }

        _used += recordLength;
    }

    private static int NameEnd(int nameLength) => 33 + nameLength + (nameLength % 2 == 0 ? 1 : 0);
}
