using HostVM.Storage.Iso;

namespace HostVM.Storage.Tests.Iso;

/// <summary>The ISO 9660 writer held against independent readers: isoinfo (genisoimage), bsdtar (libarchive) and blkid.</summary>
public sealed class IsoImageWriterTests : IDisposable
{
    private static readonly DateTimeOffset Time = new(2026, 5, 4, 3, 2, 1, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-iso-").FullName;

    [Fact]
    public void ReadersSeeTheLabelTheRockRidgeNamesAndTheExactBytes()
    {
        var random = new Random(13);
        var files = new List<IsoFile>
        {
            new("user-data", "#cloud-config\nhostname: web\n"u8.ToArray()),
            new("meta-data", "instance-id: i-1\nlocal-hostname: web\n"u8.ToArray()),
            new("network-config", Bytes(random, 2049)), // across a sector boundary, every byte value
            new("empty", []),
            new("exactly-one-sector", Bytes(random, 2048)),
            new("big", Bytes(random, 65536 + 7)),
        };
        string iso = Path.Combine(_dir, "seed.iso");
        byte[] image = IsoImageWriter.Write("CIDATA", files, Time);
        File.WriteAllBytes(iso, image);
        Assert.Equal(0, image.Length % IsoImageWriter.SectorSize);

        string description = QemuTools.Check("isoinfo", _dir, "-d", "-i", iso);
        Assert.Contains("Volume id: CIDATA", description, StringComparison.Ordinal);
        Assert.Contains("Rock Ridge signatures version 1 found", description, StringComparison.Ordinal);
        Assert.Contains($"Volume size is: {image.Length / IsoImageWriter.SectorSize}", description, StringComparison.Ordinal);

        string listing = QemuTools.Check("isoinfo", _dir, "-R", "-l", "-i", iso);
        foreach (var file in files)
        {
            Assert.Matches($@"-r--r--r--\s.*\s{file.Content.Length}\s.*\s{file.Name}\s*$", listing.Split('\n').Single(l => l.TrimEnd().EndsWith(" " + file.Name, StringComparison.Ordinal)));
        }

        Assert.Equal("#cloud-config\nhostname: web\n", QemuTools.Check("isoinfo", _dir, "-R", "-x", "/user-data", "-i", iso));
        Assert.Equal(
            files.Select(f => f.Name).Order(StringComparer.Ordinal),
            QemuTools.Check("bsdtar", _dir, "-tf", iso).Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(n => n != ".").Order(StringComparer.Ordinal));
        string extracted = Directory.CreateDirectory(Path.Combine(_dir, "out")).FullName;
        QemuTools.Check("bsdtar", extracted, "-xf", iso);
        foreach (var file in files)
        {
            Assert.Equal(file.Content, File.ReadAllBytes(Path.Combine(extracted, file.Name)));
        }

        // What cloud-init looks for: a filesystem of type iso9660 labelled CIDATA (blkid -p probes the file itself).
        Assert.Equal("CIDATA\niso9660\n", QemuTools.Check("blkid", _dir, "-p", "-o", "value", "-s", "LABEL", "-s", "TYPE", iso));
    }

    [Fact]
    public void TheImageDependsOnlyOnItsArguments()
    {
        IsoFile[] files = [new("meta-data", "a"u8.ToArray()), new("user-data", "b"u8.ToArray())];
        Assert.Equal(IsoImageWriter.Write("CIDATA", files, Time), IsoImageWriter.Write("CIDATA", [.. files.Reverse()], Time));
        Assert.NotEqual(IsoImageWriter.Write("CIDATA", files, Time), IsoImageWriter.Write("CIDATA", files, Time.AddSeconds(1)));
    }

    [Theory]
    [InlineData("cidata", "user-data")] // ISO 9660 volume ids are upper case
    [InlineData("CIDATA", "user data")]
    [InlineData("CIDATA", "../etc")]
    [InlineData("CIDATA", "")]
    public void NamesOutsideWhatTheFormatHoldsAreRefused(string volume, string file) =>
        Assert.Throws<ArgumentException>(() => IsoImageWriter.Write(volume, [new IsoFile(file, [])], Time));

    [Fact]
    public void TwoFilesOfOneNameAreRefusedAndSimilarNamesStayApart()
    {
        Assert.Throws<ArgumentException>(() => IsoImageWriter.Write("CIDATA", [new IsoFile("a", []), new IsoFile("a", [])], Time));
        string iso = Path.Combine(_dir, "similar.iso");
        File.WriteAllBytes(iso, IsoImageWriter.Write("CIDATA", [new IsoFile("user-data", "1"u8.ToArray()), new IsoFile("user-data-2", "2"u8.ToArray())], Time));
        Assert.Equal("2", QemuTools.Check("bsdtar", _dir, "-xOf", iso, "user-data-2"));
        Assert.Equal("1", QemuTools.Check("bsdtar", _dir, "-xOf", iso, "user-data"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Bytes(Random random, int length)
    {
        byte[] bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
