using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

public class ChecksumTests
{
    [Fact]
    public void MatchesTheWordByWordDefinitionForEveryLength()
    {
        var random = new Random(3);
        for (int length = 0; length < 200; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(Packets.Checksum(data), InternetChecksum.Compute(data));
        }

        var big = new byte[1500];
        Array.Fill(big, (byte)0xff);
        Assert.Equal(Packets.Checksum(big), InternetChecksum.Compute(big));
    }

    [Fact]
    public void TransportChecksumCoversThePseudoHeader()
    {
        var segment = new byte[33];
        new Random(4).NextBytes(segment);
        segment[6] = 0;
        segment[7] = 0;
        ushort sum = InternetChecksum.ComputeTransport(Packets.Guest, Packets.Gateway, 17, segment);
        Assert.Equal(Packets.Checksum(segment, Packets.Pseudo(Packets.Guest, Packets.Gateway, 17, segment.Length)), sum);
        segment[6] = (byte)(sum >> 8);
        segment[7] = (byte)sum;
        Assert.True(InternetChecksum.IsValidTransport(Packets.Guest, Packets.Gateway, 17, segment));
        Assert.False(InternetChecksum.IsValidTransport(Packets.Guest, Packets.Dns, 17, segment));
    }
}
