using System.Buffers.Binary;
using HostVM.Machine.Boot;

namespace HostVM.Machine.Tests.Boot;

public class LinuxImageTests
{
    /// <summary>An Image header as a v0.2 kernel writes it, followed by <paramref name="bodyLength"/> bytes.</summary>
    internal static byte[] SampleImage(ulong textOffset = 0x20_0000, ulong imageSize = 0x140_0000, int bodyLength = 4096)
    {
        byte[] image = new byte[LinuxImage.HeaderSize + bodyLength];
        var span = image.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, 0x0000_5A4D); // code0: "MZ" + c.li s4,-13 (EFI stub)
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], 0x0140_006F); // code1: j to the real entry
        BinaryPrimitives.WriteUInt64LittleEndian(span[8..], textOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(span[16..], imageSize);
        BinaryPrimitives.WriteUInt64LittleEndian(span[24..], 0); // flags: little-endian
        BinaryPrimitives.WriteUInt32LittleEndian(span[32..], 0x0000_0002); // version 0.2
        "RISCV\0\0\0"u8.CopyTo(span[48..]);
        "RSC\x05"u8.CopyTo(span[56..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[60..], 0x40); // res3: PE header offset
        for (int i = LinuxImage.HeaderSize; i < image.Length; i++)
        {
            image[i] = (byte)i;
        }

        return image;
    }

    [Fact]
    public void Header_fields_are_read()
    {
        byte[] file = SampleImage();
        var image = LinuxImage.Parse(file, "Image");

        Assert.Equal(0x20_0000UL, image.TextOffset);
        Assert.Equal(0x140_0000UL, image.ImageSize);
        Assert.Equal(0UL, image.Flags);
        Assert.Equal(2u, image.Version);
        Assert.Equal(file.Length, image.Data.Length);
        Assert.Equal(0x8020_0000UL, image.LoadAddress(0x8000_0000));
    }

    [Fact]
    public void Payload_reserves_the_whole_footprint()
    {
        var payload = LinuxImage.Parse(SampleImage(), "kernel").ToPayload(0x8020_0000);

        Assert.Equal(0x8020_0000UL, payload.Entry);
        Assert.Equal(0x8020_0000UL, payload.LoadAddress);
        Assert.Equal(0x8160_0000UL, payload.End);
        Assert.Throws<BootImageException>(() => LinuxImage.Parse(SampleImage(), "kernel").ToPayload(0x8010_0000));
    }

    [Fact]
    public void Footprint_is_never_smaller_than_the_file_and_missing_text_offset_means_2MiB()
    {
        var image = LinuxImage.Parse(SampleImage(textOffset: 0, imageSize: 0, bodyLength: 100), "Image");
        Assert.Equal(164UL, image.ImageSize);
        Assert.Equal(0x20_0000UL, image.TextOffset);
    }

    [Fact]
    public void Deprecated_magic_alone_is_accepted()
    {
        byte[] file = SampleImage();
        file.AsSpan(56, 4).Clear();
        Assert.Equal(0x20_0000UL, LinuxImage.Parse(file, "Image").TextOffset);
    }

    [Fact]
    public void Bad_magic_is_reported_exactly()
    {
        byte[] file = SampleImage();
        file.AsSpan(48, 12).Clear();
        var e = Assert.Throws<BootImageException>(() => LinuxImage.Parse(file, "Image"));
        Assert.Equal("Image: not a RISC-V Linux Image (bad magic at offset 56)", e.Message);
    }

    [Fact]
    public void Other_problems_are_explained()
    {
        Assert.Equal("Image: truncated Image header (file is 63 bytes, the header alone is 64)",
            Assert.Throws<BootImageException>(() => LinuxImage.Parse(SampleImage().AsMemory(0, 63), "Image")).Message);
        Assert.Contains("gunzip", Assert.Throws<BootImageException>(() => LinuxImage.Parse(new byte[] { 0x1F, 0x8B, 8, 0 }, "Image.gz")).Message, StringComparison.Ordinal);
        Assert.Contains("vmlinux", Assert.Throws<BootImageException>(() => LinuxImage.Parse(TestElfBuilder.Sample().Build(), "vmlinux")).Message, StringComparison.Ordinal);

        byte[] bigEndian = SampleImage();
        bigEndian[24] = 1;
        Assert.Contains("big-endian", Assert.Throws<BootImageException>(() => LinuxImage.Parse(bigEndian, "Image")).Message, StringComparison.Ordinal);

        Assert.Contains("text_offset", Assert.Throws<BootImageException>(() => LinuxImage.Parse(SampleImage(textOffset: 0x123), "Image")).Message, StringComparison.Ordinal);
        Assert.Contains("image_size", Assert.Throws<BootImageException>(() => LinuxImage.Parse(SampleImage(imageSize: ulong.MaxValue), "Image")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fuzzed_headers_fail_only_with_boot_image_exceptions()
    {
        var random = new Random(7);
        for (int round = 0; round < 5000; round++)
        {
            byte[] file = SampleImage(bodyLength: 64);
            for (int m = 0; m < 1 + random.Next(6); m++)
            {
                file[random.Next(LinuxImage.HeaderSize)] = (byte)random.Next(256);
            }

            try
            {
                var image = LinuxImage.Parse(file.AsMemory(0, random.Next(2) == 0 ? file.Length : random.Next(file.Length)), "Image");
                _ = image.ToPayload(image.LoadAddress(0x8000_0000));
            }
            catch (BootImageException e)
            {
                Assert.StartsWith("Image: ", e.Message, StringComparison.Ordinal);
            }
        }
    }
}
