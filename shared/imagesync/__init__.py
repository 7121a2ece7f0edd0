"""imagesync: replicate Tencent Cloud CVM custom images across regions, tracked to the end."""
